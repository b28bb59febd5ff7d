#!/usr/bin/env bash
# The real daemon for the kiosk browser test: `telestation run` on the
# synthetic camera, uploading through a rate cap to a real telestation-hub,
# both on free loopback ports. Prints the daemon's `listening URL` line.
#   live-station.sh BIN_DIR
set -euo pipefail
BIN=$1
DIR=$(mktemp -d /tmp/telestation-kiosk.XXXXXX)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HUB_PORT=$(port); KIOSK_PORT=$(port)
mkdir -p "$DIR/hub" "$DIR/state"
(umask 077; head -c 32 /dev/urandom > "$DIR/spool.key")
cat > "$DIR/station.toml" <<TOML
[station]
id = "ps-kiosk-test"
state_dir = "$DIR/state"
[hub]
url = "http://127.0.0.1:$HUB_PORT/files/"
[camera]
device = "synthetic"
width = 1280
height = 720
warmup_frames = 2
[uplink]
# Slow enough that the progress bar is seen moving.
max_rate = "8KiB/s"
min_chunk = "4KiB"
[kiosk]
listen = "127.0.0.1:$KIOSK_PORT"
[spool]
min_free = "10MiB"
key_file = "$DIR/spool.key"
TOML
"$BIN/telestation-hub" --listen "127.0.0.1:$HUB_PORT" --store "$DIR/hub" >"$DIR/hub.log" 2>&1 &
# The test posts the hub's replies about a case here.
echo "hub http://127.0.0.1:$HUB_PORT station ps-kiosk-test"
HUB=$!
"$BIN/telestation" run --config "$DIR/station.toml" &
DAEMON=$!
trap 'kill -TERM $DAEMON 2>/dev/null; wait $DAEMON 2>/dev/null; kill $HUB 2>/dev/null; rm -rf "$DIR"' EXIT
trap 'exit 0' TERM INT
wait $DAEMON
