#!/usr/bin/env bash
# The fuzz campaign's long form: every target of Tests/FuzzTests in its own
# test process (a crash in one does not stop the others), ITERATIONS inputs
# each, and a Markdown report of the figures. FUZZ_JOBS (default 1) targets
# run at a time.
# Usage: bench/fuzz.sh ITERATIONS SEED REPORT [swift build options, e.g. -c release]
# The test binary runs directly: `swift test` holds the build directory's
# lock for as long as the tests run, which would serialise the jobs.
set -u
iterations=$1 seed=$2 report=$3
shift 3
jobs=${FUZZ_JOBS:-1}
tests=$(swift build "$@" --show-bin-path)/telestationPackageTests.xctest
[ -x "$tests" ] || { echo "no test binary at $tests: run swift build --build-tests $* first"; exit 1; }
# The slowest first, so that with two jobs the others run beside it.
suites="ConfigFuzz TusResponseFuzz KioskRequestFuzz MetadataFuzz JPEGFuzz DicomFuzz HealthReportFuzz"
crashdir=$(pwd)/.build/fuzz-crashes
mkdir -p "$crashdir" "$(dirname "$report")"
logs=$(mktemp -d)

run_suite() {
  local suite=$1
  echo "== fuzz $suite: $iterations inputs, seed $seed"
  TELESTATION_FUZZ_ITERATIONS=$iterations TELESTATION_FUZZ_SEED=$seed TELESTATION_FUZZ_REPORT=$logs/$suite.row \
  TELESTATION_FUZZ_CRASH_DIR=$crashdir \
    "$tests" --testing-library swift-testing --filter "^FuzzTests\.$suite/" > "$logs/$suite.log" 2>&1
  local rc=$?
  grep -E '^fuzz |crashed|a hang|recorded an issue|Test run with' "$logs/$suite.log" | head -20
  echo $rc > "$logs/$suite.rc"
}

started=$(date +%s)
for suite in $suites; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  run_suite "$suite" &
done
wait
elapsed=$(( $(date +%s) - started ))

failed=""
rows=""
for suite in $suites; do
  rc=$(cat "$logs/$suite.rc" 2>/dev/null || echo "?")
  [ "$rc" = 0 ] || failed="$failed $suite"
  if [ -s "$logs/$suite.row" ]; then
    rows="$rows$(cat "$logs/$suite.row")"$'\n'
  else
    # The process died before its figures were written: a crash or a hang.
    rows="$rows| $suite | — | — | — | 0x$(printf %x "$seed") | 1 (exit $rc, input in $crashdir) | — | — | — |"$'\n'
  fi
done
{
  echo "# Fuzz campaign"
  echo
  echo "\`make fuzz\` on $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- Sources Tests 2>/dev/null || echo ' (modified)'),"
  echo "$(nproc) cores shared with other work, build: ${*:-debug}, $jobs target(s) at a time, $iterations inputs per target, seed 0x$(printf %x "$seed")."
  echo "Wall time: $((elapsed / 60)) min $((elapsed % 60)) s. Reproduce with \`make fuzz FUZZ_SEED=$seed\`."
  echo
  echo "| target | executions | seconds | executions/s | seed | crashes | property violations | distinct outcomes | slowest input |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  printf "%s" "$rows"
  echo
  if [ -n "$failed" ]; then echo "Failed:$failed (logs in $logs)."; else echo "No crash, no hang, no property violation."; fi
} > "$report"
cat "$report"
[ -z "$failed" ]
