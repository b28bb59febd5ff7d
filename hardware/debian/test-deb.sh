#!/usr/bin/env bash
# Installs the package on this machine, checks what it put where, starts the
# installed daemon as its service user, and removes and purges it again.
# Needs root (CI machines are throwaway). Without root nothing is tested:
# that is reported as a skip (Tests/skips.py), which fails `make test`
# unless Tests/skips.allow allows it, and fails this script run on its own.
set -euo pipefail
DEB=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
# Whether the text $2 has a line matching $1. Never `cmd | grep -q` here:
# under pipefail, grep -q leaving at the first match can kill cmd with
# SIGPIPE, and the pipeline then fails although the line was there (it did,
# for readelf -S of the 40 MB debug file).
has() { grep -q -- "$1" <<<"$2"; }
[ -f "$DEB" ] || fail "$DEB does not exist; build it with make deb"
if [ "$(id -u)" != 0 ]; then
  python3 "$ROOT/Tests/skips.py" add deb.install "not root: the package was not installed, started, removed or purged (run make test-deb as root)"
  exit $?
fi

# The debug symbols are built beside the package: telestation-dbgsym_VERSION_ARCH.deb.
DBGSYM=$(dirname "$DEB")/$(basename "$DEB" | sed 's/^telestation_/telestation-dbgsym_/')
[ -f "$DBGSYM" ] || fail "$DBGSYM does not exist; make deb builds it with the package"

# What an earlier run that failed half-way left installed would change what is checked.
for p in telestation-dbgsym telestation; do
  state=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ -n "$state" ] && [ "$state" != not-installed ]; then
    echo "== purging $p, left by an earlier run"; dpkg -P "$p" >/dev/null
  fi
done

echo "== lintian"
lintian --fail-on error --suppress-tags-from-file /dev/null "$DEB" || fail "lintian reports errors"
lintian --fail-on error --suppress-tags-from-file /dev/null "$DBGSYM" || fail "lintian reports errors in the -dbgsym package"

echo "== install"
dpkg -i "$DEB"
for f in /usr/bin/telestation /usr/bin/telestation-hub /lib/systemd/system/telestation.service \
         /lib/systemd/system/telestation-kiosk.service /usr/lib/sysusers.d/telestation.conf \
         /usr/lib/tmpfiles.d/telestation.conf /lib/udev/rules.d/70-telestation.rules \
         /usr/share/telestation/profiles/uvc-dermatoscope.toml /etc/telestation/station.toml; do
  [ -e "$f" ] || fail "$f not installed"
done
getent passwd telestation >/dev/null || fail "user telestation not created"
has '\bvideo\b' "$(id -nG telestation)" || fail "telestation is not in group video"
[ "$(stat -c %a /etc/telestation/spool.key)" = 600 ] || fail "spool.key is not mode 0600"
[ "$(stat -c %s /etc/telestation/spool.key)" = 32 ] || fail "spool.key is not 32 bytes"
[ "$(stat -c %U /var/lib/telestation)" = telestation ] || fail "/var/lib/telestation not owned by telestation"
[ -L /etc/systemd/system/multi-user.target.wants/telestation.service ] || fail "telestation.service not enabled"
libs=$(ldd /usr/bin/telestation)
has "not found" "$libs" && fail "missing shared libraries: $(grep 'not found' <<<"$libs")"
has libswiftCore "$libs" && fail "the package needs the Swift toolchain at run time"
SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no /lib/systemd/system/telestation.service || fail "unit does not verify"

echo "== the installed binary runs as the service user"
setpriv --reuid=telestation --regid=telestation --init-groups telestation config --config /etc/telestation/station.toml \
  || fail "installed config does not load for the service user"

echo "== telestation-hub is the same binary, started under its own name"
[ "$(readlink /usr/bin/telestation-hub)" = telestation ] || fail "/usr/bin/telestation-hub is not a symlink to telestation"
hub_help=$(telestation-hub --help) || fail "telestation-hub --help failed"
for sub in serve enroll revoke stations import keys reply; do
  grep -q -- "$sub" <<<"$hub_help" || fail "telestation-hub --help does not list the subcommand $sub"
done
# Serving is the default subcommand: `telestation-hub --listen … --store …` below runs it.
serve_help=$(telestation-hub serve --help) || fail "telestation-hub serve --help failed"
for opt in --listen --store --token-file --max-size --expiry-hours --stow-url --stow-user \
           --stow-password-file --stow-retry-max --no-stow-verify --metrics-require-token; do
  grep -q -- "$opt" <<<"$serve_help" || fail "telestation-hub serve --help does not list $opt"
done
hub_dir=$(mktemp -d); chown telestation: "$hub_dir"
setpriv --reuid=telestation --regid=telestation --init-groups telestation-hub --listen 127.0.0.1:0 --store "$hub_dir" \
  --expiry-hours 24 >"$hub_dir.out" 2>&1 &
hub_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$hub_dir.out" && break; sleep 0.1; done
hub_url=$(sed -n 's/.*listening on \(http:[^,]*\),.*/\1/p' "$hub_dir.out")
options=$(curl -sS -i -X OPTIONS "$hub_url" 2>&1) || true
created=$(curl -sS -i -X POST -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 10' "$hub_url" 2>&1) || true
created_at=$(date +%s)
hub_log=$(cat "$hub_dir.out")
kill "$hub_pid" 2>/dev/null || fail "the installed telestation-hub exited early: $hub_log"
wait "$hub_pid" 2>/dev/null || true
rm -rf "$hub_dir" "$hub_dir.out"
grep -qi '^Tus-Version: 1.0.0' <<<"$options" || fail "the installed telestation-hub did not answer OPTIONS with Tus-Version ($hub_url): $options"

# The release binary carries a trimmed copy of ICU's data (hardware/icu): the
# paths of the shipped binary that go through ICU must still work — an HTTP
# date (DateFormatter, en_US_POSIX, GMT) and a regular expression (config).
echo "== ICU: dates and regular expressions in the shipped binary"
expires=$(sed -n 's/^Upload-Expires: *\(.*\)\r$/\1/Ip' <<<"$created")
[[ "$expires" =~ ^[A-Z][a-z]{2},\ [0-9]{2}\ [A-Z][a-z]{2}\ [0-9]{4}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\ GMT$ ]] \
  || fail "the hub's Upload-Expires is not an HTTP date: '$expires' (answer to a creation: $created)"
ahead=$(( $(date -d "$expires" +%s) - created_at ))
[ "$ahead" -gt $((24 * 3600 - 120)) ] && [ "$ahead" -le $((24 * 3600 + 5)) ] \
  || fail "Upload-Expires '$expires' is ${ahead}s after the creation, not 24 hours"
conf=$(mktemp)
sed 's/^# case_id_pattern = /case_id_pattern = /' /etc/telestation/station.toml >"$conf"
grep -q '^case_id_pattern = ' "$conf" || fail "the installed station.toml has no case_id_pattern example to enable"
telestation config --config "$conf" >/dev/null || fail "a config with kiosk.case_id_pattern does not load"
sed -i 's/^case_id_pattern = .*/case_id_pattern = "^(HC-[0-9"/' "$conf"
out=$(telestation config --config "$conf" 2>&1) && fail "a config with an unbalanced regular expression loaded: $out"
has 'is not a valid regular expression' "$out" || fail "an unbalanced kiosk.case_id_pattern is refused without naming the problem: $out"
rm -f "$conf"

# Debug symbols: gdb must find them through the build ID once -dbgsym is
# installed, and not before (the stripped binary keeps only exported names).
# (A Swift function's DWARF name is its bare name, splitListen, under its
# source file; the stripped binary exports no names at all.)
hub_source_in_gdb() {
  has splitListen "$(gdb -nx -batch -ex 'info functions splitListen' /usr/bin/telestation 2>/dev/null \
    | grep -A1 '^File .*/HubCommand/TelestationHub\.swift:')"
}
echo "== debug symbols: absent without telestation-dbgsym"
has '\.debug_info' "$(readelf -S /usr/bin/telestation)" && fail "the installed binary is not stripped"
hub_source_in_gdb && fail "gdb finds source files without telestation-dbgsym installed; is the binary stripped?"
echo "== debug symbols: found with telestation-dbgsym"
dpkg -i "$DBGSYM"
build_id=$(readelf -n /usr/bin/telestation | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
debug_file=/usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug
[ -f "$debug_file" ] || fail "no $debug_file for build ID $build_id of /usr/bin/telestation"
has '\.debug_info' "$(readelf -S "$debug_file" 2>/dev/null)" || fail "$debug_file has no .debug_info"
hub_source_in_gdb || fail "gdb does not find TelestationHub.swift through $debug_file"
dpkg -r telestation-dbgsym
[ ! -e "$debug_file" ] || fail "$debug_file left after removing telestation-dbgsym"

echo "== remove"
dpkg -r telestation
[ ! -e /usr/bin/telestation ] || fail "binary left after remove"
[ -e /etc/telestation/spool.key ] || fail "remove must keep the spool key"
echo "== purge"
dpkg -P telestation
[ ! -e /etc/telestation/spool.key ] || fail "purge left the spool key"
[ ! -e /lib/systemd/system/telestation.service ] || fail "unit left after purge"
echo "test-deb: OK"
