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
[ -f "$DEB" ] || fail "$DEB does not exist; build it with make deb"
if [ "$(id -u)" != 0 ]; then
  python3 "$ROOT/Tests/skips.py" add deb.install "not root: the package was not installed, started, removed or purged (run make test-deb as root)"
  exit $?
fi

echo "== lintian"
lintian --fail-on error --suppress-tags-from-file /dev/null "$DEB" || fail "lintian reports errors"

echo "== install"
dpkg -i "$DEB"
for f in /usr/bin/telestation /usr/bin/telestation-hub /lib/systemd/system/telestation.service \
         /lib/systemd/system/telestation-kiosk.service /usr/lib/sysusers.d/telestation.conf \
         /usr/lib/tmpfiles.d/telestation.conf /lib/udev/rules.d/70-telestation.rules \
         /usr/share/telestation/profiles/uvc-dermatoscope.toml /etc/telestation/station.toml; do
  [ -e "$f" ] || fail "$f not installed"
done
getent passwd telestation >/dev/null || fail "user telestation not created"
id -nG telestation | grep -qw video || fail "telestation is not in group video"
[ "$(stat -c %a /etc/telestation/spool.key)" = 600 ] || fail "spool.key is not mode 0600"
[ "$(stat -c %s /etc/telestation/spool.key)" = 32 ] || fail "spool.key is not 32 bytes"
[ "$(stat -c %U /var/lib/telestation)" = telestation ] || fail "/var/lib/telestation not owned by telestation"
[ -L /etc/systemd/system/multi-user.target.wants/telestation.service ] || fail "telestation.service not enabled"
ldd /usr/bin/telestation | grep -q "not found" && fail "missing shared libraries: $(ldd /usr/bin/telestation | grep 'not found')"
ldd /usr/bin/telestation | grep -q libswiftCore && fail "the package needs the Swift toolchain at run time"
SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no /lib/systemd/system/telestation.service || fail "unit does not verify"

echo "== the installed binary runs as the service user"
setpriv --reuid=telestation --regid=telestation --init-groups telestation config --config /etc/telestation/station.toml \
  || fail "installed config does not load for the service user"

echo "== remove"
dpkg -r telestation
[ ! -e /usr/bin/telestation ] || fail "binary left after remove"
[ -e /etc/telestation/spool.key ] || fail "remove must keep the spool key"
echo "== purge"
dpkg -P telestation
[ ! -e /etc/telestation/spool.key ] || fail "purge left the spool key"
[ ! -e /lib/systemd/system/telestation.service ] || fail "unit left after purge"
echo "test-deb: OK"
