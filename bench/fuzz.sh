#!/usr/bin/env bash
# The fuzz campaign's long form: every target of Tests/FuzzTests in its own
# test process (a crash in one does not stop the others), ITERATIONS inputs
# each, and a Markdown report of the figures.
# Usage: bench/fuzz.sh ITERATIONS SEED REPORT [swift test options, e.g. -c release]
set -u
iterations=$1 seed=$2 report=$3
shift 3
suites="ConfigFuzz TusResponseFuzz MetadataFuzz JPEGFuzz KioskRequestFuzz"
crashdir=$(pwd)/.build/fuzz-crashes
mkdir -p "$crashdir" "$(dirname "$report")"
rows=$(mktemp); logs=$(mktemp -d)
trap 'rm -f "$rows"' EXIT
failed=""
started=$(date +%s)
for suite in $suites; do
  echo "== fuzz $suite: $iterations inputs, seed $seed"
  before=$(wc -l < "$rows")
  TELESTATION_FUZZ_ITERATIONS=$iterations TELESTATION_FUZZ_SEED=$seed TELESTATION_FUZZ_REPORT=$rows \
  TELESTATION_FUZZ_CRASH_DIR=$crashdir \
    swift test --skip-build "$@" --filter "^FuzzTests\.$suite/" > "$logs/$suite.log" 2>&1
  rc=$?
  grep -E '^fuzz |crashed|a hang|recorded an issue|Test run with' "$logs/$suite.log" | head -20
  if [ $rc -ne 0 ]; then
    failed="$failed $suite"
    if [ "$(wc -l < "$rows")" = "$before" ]; then
      # The process died before its figures were written: a crash or a hang.
      echo "| $suite | — | — | — | 0x$(printf %x "$seed") | 1 (exit $rc, see $logs/$suite.log) | — | — | — |" >> "$rows"
    fi
  fi
done
elapsed=$(( $(date +%s) - started ))
{
  echo "# Fuzz campaign"
  echo
  echo "\`make fuzz\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (modified)'),"
  echo "$(nproc) cores, swift test $* (build: ${*:-debug}), $iterations inputs per target, seed 0x$(printf %x "$seed")."
  echo "Total time: $((elapsed / 60)) min $((elapsed % 60)) s. Reproduce a run with \`make fuzz FUZZ_SEED=$seed\`."
  echo
  echo "| target | executions | seconds | executions/s | seed | crashes | property violations | distinct outcomes | slowest input |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  cat "$rows"
  echo
  if [ -n "$failed" ]; then echo "Failed:$failed (logs in $logs)."; else echo "No crash, no hang, no property violation."; fi
} > "$report"
cat "$report"
[ -z "$failed" ]
