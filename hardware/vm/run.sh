#!/bin/sh
# Proves the capture path on a real V4L2 driver: boots Debian's kernel in a
# virtme-ng VM (no KVM needed), loads vivid and runs inside-vm.sh against an
# already-built telestation binary (and telestation-hub beside it). Installs
# qemu, the kernel, v4l-utils and libjpeg-turbo-progs first if they are
# missing, and v4l2loopback (dkms) for the guest's kernel; virtme-ng comes
# from .build/venv (`make deps-test`).
#
# usage: hardware/vm/run.sh [TELESTATION_BINARY] [OUTDIR]
#   defaults: .build/debug/telestation and .build/vm-results
# Exit status 0 when every check passed; the report is OUTDIR/results.md.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$(realpath "${1:-$ROOT/.build/debug/telestation}")
OUT=${2:-$ROOT/.build/vm-results}

if [ ! -x "$BIN" ]; then
    echo "run.sh: $BIN is not built; run 'swift build' first" >&2
    exit 2
fi

need_apt=""
command -v qemu-system-x86_64 >/dev/null || need_apt="$need_apt qemu-system-x86"
command -v v4l2-ctl >/dev/null || need_apt="$need_apt v4l-utils"
command -v djpeg >/dev/null || need_apt="$need_apt libjpeg-turbo-progs"
# mkfs.vfat and fsck.vfat for the USB stick checks (stick_checks.py).
command -v mkfs.vfat >/dev/null || need_apt="$need_apt dosfstools"
ls /boot/vmlinuz-*-amd64 >/dev/null 2>&1 || need_apt="$need_apt linux-image-amd64"
# virtme-ng needs a static busybox for its init.
[ -e /bin/busybox ] || [ -e /usr/bin/busybox ] || need_apt="$need_apt busybox-static"
if [ -n "$need_apt" ]; then
    echo "run.sh: installing$need_apt" >&2
    apt-get install -y $need_apt >&2
fi
# virtme-ng comes from the project's venv (`make deps-test` puts it in
# .build/venv); never pip-installed into the system's Python.
VNG=${VNG:-$ROOT/.build/venv/bin/vng}
[ -x "$VNG" ] || VNG=$(command -v vng || true)
if [ -z "$VNG" ]; then
    echo "run.sh: virtme-ng (vng) is missing; run 'make deps-test', which installs it into .build/venv, or set VNG=/path/to/vng" >&2
    exit 2
fi

K=$(ls /boot/vmlinuz-*-amd64 | grep -v cloud | sort -V | tail -n 1)
KVER=${K#/boot/vmlinuz-}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
# Only what the checks write, so a stale image can never pass for a new one.
(cd "$OUT" && rm -rf status results.md guest.log ./*.jpg ./*.json ./*.jsonl ./*.err ./*.check ./*.out ./*.txt ./*.toml ./*.log tools)

# v4l2loopback for the VM's kernel: Debian's dkms package builds it once the
# matching headers are there; the guest loads it from the host's /lib/modules.
# If it cannot be built, the MJPEG check inside the VM fails and says so.
if ! modinfo -k "$KVER" v4l2loopback >/dev/null 2>&1; then
    echo "run.sh: building v4l2loopback for $KVER" >&2
    apt-get install -y "linux-headers-$KVER" v4l2loopback-dkms >&2 || true
    dkms autoinstall -k "$KVER" >&2 || true
fi
# The uinput button and the MJPEG feeder, compiled here and run in the guest.
mkdir -p "$OUT/tools"
cc -O2 -Wall -o "$OUT/tools/uinput-button" "$HERE/uinput-button.c" >&2 || echo "run.sh: cannot build uinput-button" >&2
cc -O2 -Wall -o "$OUT/tools/mjpeg-feed" "$HERE/mjpeg-feed.c" >&2 || echo "run.sh: cannot build mjpeg-feed" >&2

echo "run.sh: booting $K (software emulation, a few minutes)" >&2
# The guest sees the host's files read-only, except OUT (--rwdir).
# vng's output goes through a pipe: qemu reopens its stdout and stderr by
# path (/proc/self/fd/1, as file chardevs, with O_TRUNC), which would empty
# the file a caller sends `make test`'s output to.
{ timeout 1500 "$VNG" --run "$K" --disable-kvm --memory 2G --rwdir "$OUT" \
    --exec "sh $HERE/inside-vm.sh $BIN $OUT > $OUT/guest.log 2>&1" 2>&1 || true; } | cat >&2

if [ ! -f "$OUT/status" ]; then
    echo "run.sh: the VM did not run the checks; see $OUT/guest.log" >&2
    exit 1
fi
cat "$OUT/results.md"
status=$(cat "$OUT/status")
# Its `- SKIP ID: reason` lines go to `make test`'s skip report (Tests/skips.py).
python3 "$ROOT/Tests/skips.py" vm "$OUT/results.md" || status=1
exit "$status"
