#!/bin/sh
# Runs inside the virtme-ng guest of vm_power_cut.py, once per boot.
#
# usage: vm_power_cut_guest.sh MODE BIN_DIR CONFIG PLAN [PRELOAD]
#   MODE cycle: mount the station's disk, start `telestation run`, then run
#               the enqueues listed in PLAN ("case path pause" per line)
#               until the host cuts the power (kills QEMU).
#   MODE final: mount, start the daemon, wait until every item is uploaded
#               (or held), stop the daemon with SIGTERM and unmount cleanly.
#   PRELOAD:    a shared library to preload into telestation (the campaign's
#               deliberate fault: spool files not fsynced).
#
# Lines starting with "PC:" on stdout tell the host what happened; the host
# reads them as they are written (virtio console), so an ENQ-START always
# reaches it before the enqueue can have changed the disk. Everything the
# daemon says goes to stderr.
MODE=$1
BIN=$2
CFG=$3
PLAN=$4
PRELOAD=${5:-}
DISK=/dev/vda
MNT=/run/station-disk

say() { echo "PC:$*"; }
say BOOTED "$(cut -d' ' -f1 /proc/uptime)"

# The one network interface QEMU gives us (user networking, restricted: the
# only way out is the hub forward to the host's loopback).
IF=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
ip link set lo up
ip link set "$IF" up && ip addr add 10.0.2.15/24 dev "$IF" || { say FAILED "no network interface ($IF)"; exit 1; }

# The host ran e2fsck on the image before this boot; a mount that fails
# here means the filesystem is beyond what fsck repaired.
mkdir -p "$MNT"
if ! mount -t ext4 "$DISK" "$MNT" 2> /tmp/mount.err; then
    say FAILED "mount $DISK: $(cat /tmp/mount.err)"
    exit 1
fi
say MOUNTED

DB=$MNT/$(sed -n 's/^state_dir *= *"\/run\/station-disk\/\(.*\)"/\1/p' "$CFG")/queue.sqlite
[ -e "$DB" ] && FRESH=no || FRESH=yes

if [ -n "$PRELOAD" ]; then export LD_PRELOAD="$PRELOAD"; fi
# The daemon's stdout ("listening http://...") and log both go to stderr.
"$BIN/telestation" run --config "$CFG" 1>&2 &
DAEMON=$!
say DAEMON-START "$(cut -d' ' -f1 /proc/uptime)"

if [ "$MODE" = cycle ]; then
    # On a new disk the daemon creates the queue database; an enqueue that
    # opens it at the same moment can be refused ("database is locked" while
    # SQLite switches the new file to WAL, where it does not wait). That is a
    # first-start race, not a power-loss matter: the first enqueue waits for
    # the switch (the -wal file appears).
    if [ $FRESH = yes ]; then
        n=0
        while [ ! -e "$DB-wal" ] && [ $n -lt 240 ]; do sleep 0.5; n=$((n + 1)); done
    fi
    while read -r case path pause; do
        say ENQ-START "$case"
        out=$("$BIN/telestation" enqueue --config "$CFG" --case "$case" "$path" 2>&1)
        rc=$?
        if [ $rc -eq 0 ] && echo "$out" | grep -q "queued as item"; then
            say ENQ-ACK "$case" "$(cut -d" " -f1 /proc/uptime)"
        else
            say ENQ-FAIL "$case" "exit $rc:" "$(echo "$out" | tail -n 2 | tr '\n' ' ')"
        fi
        sleep "$pause"
    done < "$PLAN"
    say PLAN-DONE
    # Nothing more to do; the power cut comes from the host.
    wait
    exit 0
fi

# Final boot: power stays on until everything is uploaded and every receipt
# the hub owes has come back.
pending=""
limit=$(( $(cut -d. -f1 /proc/uptime) + ${DRAIN_TIMEOUT:-900} ))
while [ "$(cut -d. -f1 /proc/uptime)" -lt "$limit" ]; do
    now=$(sqlite3 -readonly "$DB" "SELECT count(*) FROM item WHERE state NOT IN ('uploaded','received','held') OR (state = 'uploaded' AND awaiting_receipt = 1)" 2>&1)
    [ "$now" != "$pending" ] && say PENDING "$now" "$(cut -d' ' -f1 /proc/uptime)"
    pending=$now
    [ "$pending" = 0 ] && break
    sleep 2
done
if [ "$pending" = 0 ]; then say DRAINED; else say FAILED "not drained: $pending item(s) pending"; fi
kill -TERM $DAEMON
wait $DAEMON
say DAEMON-EXIT $?
sync
if umount "$MNT"; then say UNMOUNTED; else say FAILED "umount $MNT"; fi
