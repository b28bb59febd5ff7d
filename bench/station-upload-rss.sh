#!/bin/sh
# Resident memory of `telestation run` while it uploads its queue to a real
# telestation-hub on loopback, beside reference clients sending the same
# bytes to the same hub in the same run: curl (one tus creation-with-upload
# POST streaming the file with -T) and tuspy (the official Python tus client).
#
#   bench/station-upload-rss.sh [MB...]          default: 5 50
#   MAX_CHUNK=1MiB bench/station-upload-rss.sh 50  with a smaller uplink.max_chunk
#
# For each size: a random-noise JPEG of about MB megabytes (cjpeg -quality
# 100), a fresh daemon (synthetic camera at 640x480, so the camera's buffers
# are in the figure as on a station) and hub. The daemon idles 5 s (baseline),
# then `telestation enqueue` queues the image from another process and the
# daemon's upload loop sends it; VmRSS is sampled from /proc every 0.1 s until
# the hub has the file, and VmHWM is read at the end. The reference clients'
# peak RSS is their ru_maxrss. Binaries from $BIN (default .build/debug).
set -eu
BIN=${BIN:-.build/debug}
[ $# -gt 0 ] || set -- 5 50
work=$(mktemp -d /tmp/telestation-rss.XXXXXX)
hub=""; daemon=""
cleanup() {
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  [ -n "$hub" ] && kill "$hub" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
peak_of() { python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$@"; }

printf '| file | daemon idle VmRSS | daemon peak VmRSS while uploading | daemon VmHWM after | enqueue → stored | curl peak RSS | tuspy peak RSS |\n'
printf '|---|---|---|---|---|---|---|\n'
for mb in "$@"; do
  d="$work/$mb"; mkdir -p "$d/hub" "$d/state"
  side=$(python3 -c "import math; print(int(math.sqrt($mb * 1e6 / 1.985)) // 16 * 16)")
  python3 -c "import os,sys; w=h=$side; sys.stdout.buffer.write(b'P6 %d %d 255\n' % (w, h) + os.urandom(w * h * 3))" > "$d/noise.ppm"
  cjpeg -quality 100 -outfile "$d/image.jpg" "$d/noise.ppm"; rm "$d/noise.ppm"
  bytes=$(stat -c %s "$d/image.jpg")
  hp=$(port); kp=$(port)
  cat > "$d/station.toml" <<TOML
[station]
id = "ps-bench-rss"
state_dir = "$d/state"
[hub]
url = "http://127.0.0.1:$hp/files/"
[camera]
device = "synthetic"
width = 640
height = 480
[kiosk]
listen = "127.0.0.1:$kp"
[spool]
min_free = "10MiB"
key_file = "$d/spool.key"
TOML
  (umask 077; head -c 32 /dev/urandom > "$d/spool.key")
  [ -z "${MAX_CHUNK:-}" ] || printf '[uplink]\nmax_chunk = "%s"\n' "$MAX_CHUNK" >> "$d/station.toml"
  "$BIN/telestation-hub" --listen "127.0.0.1:$hp" --store "$d/hub" >"$d/hub.log" 2>&1 &
  hub=$!
  "$BIN/telestation" run --config "$d/station.toml" >"$d/daemon.out" 2>"$d/daemon.err" &
  daemon=$!
  i=0; until grep -q '^listening' "$d/daemon.out" 2>/dev/null; do i=$((i + 1)); [ $i -lt 600 ] || { cat "$d/daemon.err" >&2; exit 1; }; sleep 0.1; done
  sleep 5
  idle=$(kb "$daemon" VmRSS)
  "$BIN/telestation" enqueue "$d/image.jpg" --config "$d/station.toml" --case 40123456 --site arm_left >/dev/null
  start=$(date +%s.%N); peak=$idle
  # Done when the hub has stored the image and its preview (a metadata file each).
  until [ "$(find "$d/hub" -maxdepth 1 -name '*.json' | wc -l)" -ge 2 ]; do
    r=$(kb "$daemon" VmRSS); [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.1
  done
  end=$(date +%s.%N)
  hwm=$(kb "$daemon" VmHWM)
  kill -TERM "$daemon"; wait "$daemon" || true; daemon=""

  # The same bytes, same hub: curl streams the file from disk in one request
  # (no trailing slash: after one, curl -T appends the file's name to the URL).
  meta="filename $(printf 'curl-image.jpg' | base64)"
  curl_peak=$(peak_of curl -sS -f -X POST -T "$d/image.jpg" -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $bytes" \
    -H 'Content-Type: application/offset+octet-stream' -H "Upload-Metadata: $meta" "http://127.0.0.1:$hp/files")
  tuspy_peak=$(peak_of python3 bench/uplink/tuspy_upload.py "http://127.0.0.1:$hp/files/" "$d/image.jpg")
  kill "$hub"; wait "$hub" 2>/dev/null || true; hub=""

  printf '| %s MB (%s bytes)%s | %s KiB | %s KiB (+%s) | %s KiB | %.1f s | %s KiB | %s KiB |\n' "$mb" "$bytes" "${MAX_CHUNK:+, max_chunk $MAX_CHUNK}" "$idle" "$peak" \
    "$((peak - idle))" "$hwm" "$(echo "$end - $start" | bc)" "$curl_peak" "$tuspy_peak"
done
