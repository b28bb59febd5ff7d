#!/bin/sh
# Resident memory and CPU of the station daemon: at idle over a window
# (no busy polling allowed), and while a kiosk holds the live preview open.
#
#   bench/station-idle.sh [SECONDS] [DAEMON [ARGS...]]
#
# Defaults: 60 s, the daemon on the demo backend with its camera off
# (TELESTATION_DEMO_CAMERA=off), so the figure is the daemon's own cost:
# HTTP server, notify/watchdog loop, service group. Point it at
# `telestation run --config ...` to measure the composed daemon; the
# listening address is read from the daemon's stdout or from $BENCH_URL.
set -eu
WINDOW=${1:-60}
[ $# -gt 0 ] && shift
if [ $# -eq 0 ]; then
  set -- .build/debug/telestation-demo-station --listen 127.0.0.1:0
  export TELESTATION_DEMO_CAMERA=${TELESTATION_DEMO_CAMERA:-off}
  export TELESTATION_DEMO_ROUND_MS=${TELESTATION_DEMO_ROUND_MS:-5000}
fi
out=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$out"' EXIT
"$@" >"$out/stdout" 2>"$out/stderr" &
pid=$!
url=${BENCH_URL:-}
i=0
while [ -z "$url" ] && [ $i -lt 600 ]; do
  url=$(sed -n 's/^listening \(http[^ ]*\)$/\1/p' "$out/stdout" | head -1)
  i=$((i + 1)); sleep 0.1
done
[ -n "$url" ] || { echo "daemon did not report its address" >&2; cat "$out/stderr" >&2; exit 1; }

hz=$(getconf CLK_TCK)
rss_kb() { awk '/^VmRSS/ {print $2}' /proc/$pid/status; }
cpu_ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }

sleep 5   # let start-up settle
rss_start=$(rss_kb)
t0=$(cpu_ticks)
sleep "$WINDOW"
t1=$(cpu_ticks)
rss_idle=$(rss_kb)
idle_cpu=$(awk -v t="$((t1 - t0))" -v hz="$hz" -v w="$WINDOW" 'BEGIN { printf "%.2f", 100 * t / hz / w }')

# A kiosk page holding the MJPEG preview open for 20 s.
p0=$(cpu_ticks)
curl -s --max-time 20 -o "$out/preview.mjpeg" "${url%/}/api/v1/preview.mjpeg" || true
p1=$(cpu_ticks)
rss_preview=$(rss_kb)
frames=0
[ -s "$out/preview.mjpeg" ] && frames=$(grep -c -a -- '--telestationframe' "$out/preview.mjpeg" || true)
preview_cpu=$(awk -v t="$((p1 - p0))" -v hz="$hz" 'BEGIN { printf "%.1f", 100 * t / hz / 20 }')

echo "daemon:            $*"
echo "RSS after start:   ${rss_start} KiB"
echo "RSS after ${WINDOW} s idle: ${rss_idle} KiB"
echo "CPU over ${WINDOW} s idle: ${idle_cpu} % of one core ($((t1 - t0)) ticks at ${hz} Hz)"
echo "preview 20 s:      ${frames} frames, ${preview_cpu} % of one core, RSS ${rss_preview} KiB"
