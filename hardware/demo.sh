#!/usr/bin/env bash
# make demo: a whole station on one machine, on embedded defaults —
# the synthetic camera, a local hub on loopback, the queue, the upload.
set -euo pipefail
BIN=${1:-.build/debug}
DEMO=${DEMO_DIR:-$(mktemp -d /tmp/telestation-demo.XXXXXX)}
PORT=${DEMO_HUB_PORT:-18080}
mkdir -p "$DEMO/state" "$DEMO/hub"
head -c 24 /dev/urandom | base64 > "$DEMO/token"; chmod 600 "$DEMO/token"
# The spool key (on a station: /etc/telestation/spool.key, created by the package).
(umask 077; head -c 32 /dev/urandom > "$DEMO/spool.key")
cat > "$DEMO/station.toml" <<TOML
[station]
id = "ps-demo-01"
state_dir = "$DEMO/state"

[hub]
url = "http://127.0.0.1:$PORT/files/"
token_file = "$DEMO/token"

[camera]
device = "synthetic"
width = 1280
height = 720
warmup_frames = 3

[spool]
min_free = "10MiB"
key_file = "$DEMO/spool.key"
TOML
export TELESTATION_CONFIG="$DEMO/station.toml"
echo "== configuration ($TELESTATION_CONFIG)"
"$BIN/telestation" config

echo "== hub on 127.0.0.1:$PORT storing into $DEMO/hub"
"$BIN/telestation-hub" --listen "127.0.0.1:$PORT" --store "$DEMO/hub" --token-file "$DEMO/token" > "$DEMO/hub.log" 2>&1 &
HUB=$!
trap 'kill $HUB 2>/dev/null || true' EXIT
# Its own startup line, not just an answer on the port: another program
# already listening there would take the images instead.
for _ in $(seq 100); do grep -q "listening on" "$DEMO/hub.log" && break; kill -0 $HUB 2>/dev/null || break; sleep 0.2; done
if ! grep -q "listening on" "$DEMO/hub.log"; then
    echo "demo FAILED: the hub did not start on 127.0.0.1:$PORT: $(tail -n 2 "$DEMO/hub.log")" >&2
    echo "  if another program uses port $PORT, run the demo with DEMO_HUB_PORT=another port" >&2
    exit 1
fi

echo "== capture two stills from the synthetic camera (case 40123456)"
"$BIN/telestation" capture --case 40123456 --site arm_left --urgent
"$BIN/telestation" capture --case 40123456 --site arm_left --note "control a los 30 días"

echo "== queue"
"$BIN/telestation" status

echo "== the queued images on disk are encrypted"
# Each of the two captures queues the image and its preview; all four must reach the hub.
SENT=4
queued=$(find "$DEMO/state/spool" -name '*.jpg' | wc -l)
[ "$queued" -eq "$SENT" ] || { echo "demo FAILED: two captures should queue $SENT images (each with its preview), the spool holds $queued" >&2; exit 1; }
for f in "$DEMO"/state/spool/*.jpg; do
  magic=$(head -c 5 "$f")
  echo "$(basename "$f"): $([ "$magic" = TSENC ] && echo "encrypted (AES-256-GCM)" || echo "NOT ENCRYPTED")"
  [ "$magic" = TSENC ] || exit 1
done

echo "== upload"
"$BIN/telestation" sync --deadline 2m

echo "== queue after upload"
"$BIN/telestation" status

echo "== what the hub stored ($DEMO/hub)"
ls -l "$DEMO/hub"
# Each stored image must hash to the sha256 the station recorded in its
# metadata, and every image sent must be there: a difference, a missing hash
# or a missing image fails the demo.
verified=0; bad=0
for meta in "$DEMO"/hub/*.json; do
  [ -e "$meta" ] || continue
  file="${meta%.json}"
  if [ ! -f "$file" ]; then echo "$(basename "$meta"): metadata without its image"; bad=$((bad + 1)); continue; fi
  want=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"].get("sha256",""))' "$meta" 2>/dev/null || true)
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ -z "$want" ]; then
    echo "$(basename "$file"): sha256 $got, but the station recorded none"; bad=$((bad + 1))
  elif [ "$want" = "$got" ]; then
    echo "$(basename "$file"): sha256 $got matches the station's"; verified=$((verified + 1))
  else
    echo "$(basename "$file"): sha256 $got DIFFERS from the station's $want"; bad=$((bad + 1))
  fi
done
echo "demo files are in $DEMO"
if [ "$bad" -gt 0 ] || [ "$verified" -ne "$SENT" ]; then
  echo "demo FAILED: $SENT images sent, $verified on the hub with a matching sha256, $bad wrong" >&2
  exit 1
fi
echo "demo OK: $SENT images sent, $verified on the hub, each sha256 verified"
