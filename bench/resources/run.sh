#!/bin/sh
# Memory and CPU of the release daemon on a Pi-class budget (issue #17:
# ≤ 25 MB resident idle, no growth with file size).
#
#   make release && bench/resources/run.sh [IDLE_SECONDS] [MB...]
#   defaults: 60 s idle, files of 5 and 50 MB; binaries from $BIN (.build/release)
#   `photo:2592x1944` uploads a camera photograph instead, which the daemon
#   recompresses to JPEG XL for the hub (README "Fewer bytes on the wire")
#
# Idle: `telestation run` with the synthetic camera (640x480, streaming as a
# real camera does), a real spool, and a local telestation-hub to talk to.
# After a 10 s warm-up, VmRSS is read from /proc/PID/status every second for
# IDLE_SECONDS; printed are its minimum, median and maximum, VmHWM at the end,
# the anonymous/file-backed split, the thread count, and the CPU seconds
# (utime + stime) used over the window, and how much of the resident memory
# the daemon touched during the window (the accessed bits are cleared at its
# start through /proc/PID/clear_refs; "Referenced" at its end), in all and
# in the binary's code. `pmap -x` of the process at the end of the window
# goes to $OUT/idle-pmap.txt (largest mappings first).
#
# Upload: for each size, a fresh daemon and hub; a JPEG of about MB megabytes
# of noise (cjpeg -quality 100: a camera-like JPEG that does not compress),
# queued with `telestation enqueue` from another process and sent by the
# daemon's upload loop. VmRSS is sampled every 0.1 s until the hub has stored
# the image and its preview; VmHWM is read at the end.
#
# The hub is run as the package runs it: a symlink named telestation-hub to
# the telestation binary.
set -eu
BIN=$(realpath "${BIN:-.build/release}")
IDLE=${1:-60}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- 5 50
[ -x "$BIN/telestation" ] || { echo "$BIN/telestation is missing; run make release (or set BIN)" >&2; exit 1; }
command -v cjpeg >/dev/null || { echo "cjpeg is missing; apt-get install libjpeg-turbo-progs" >&2; exit 1; }
work=$(mktemp -d /tmp/telestation-resources.XXXXXX)
OUT=${OUT:-$work}
hub=""; daemon=""
cleanup() {
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  [ -n "$hub" ] && kill "$hub" 2>/dev/null && wait "$hub" 2>/dev/null || true
  [ "$OUT" = "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
ln -s "$BIN/telestation" "$work/telestation-hub"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kb() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# start_pair DIR: a hub and a daemon with the synthetic camera, sharing DIR.
start_pair() {
  d=$1; mkdir -p "$d/hub" "$d/state"
  hp=$(port); kp=$(port)
  cat > "$d/station.toml" <<TOML
[station]
id = "ps-bench-resources"
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
  "$work/telestation-hub" --listen "127.0.0.1:$hp" --store "$d/hub" >"$d/hub.log" 2>&1 &
  hub=$!
  "$BIN/telestation" run --config "$d/station.toml" >"$d/daemon.out" 2>"$d/daemon.err" &
  daemon=$!
  i=0
  until grep -q '^listening' "$d/daemon.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 600 ] || { echo "the daemon did not start:" >&2; cat "$d/daemon.err" >&2; exit 1; }
    sleep 0.1
  done
}
stop_pair() {
  kill -TERM "$daemon"; wait "$daemon" || true; daemon=""
  kill "$hub"; wait "$hub" 2>/dev/null || true; hub=""
}

echo "binary: $BIN/telestation ($(stat -c %s "$BIN/telestation") bytes), $(nproc) cores, $(uname -m)"
echo

# ---- idle
start_pair "$work/idle"
sleep 10
: > "$work/idle/rss"
t0=$(ticks "$daemon")
# The pages the daemon touches while idle: clear the accessed bits now, read
# "Referenced" at the end of the window (what an ideal trim could not drop).
echo 1 > "/proc/$daemon/clear_refs"
s=0
while [ $s -lt "$IDLE" ]; do kb "$daemon" VmRSS >> "$work/idle/rss"; sleep 1; s=$((s + 1)); done
t1=$(ticks "$daemon")
referenced=$(awk '/^Referenced:/ {print $2}' "/proc/$daemon/smaps_rollup")
code_touched=$(awk -v exe="$BIN/telestation" '/^[0-9a-f]+-[0-9a-f]+ / {code = ($2 == "r-xp" && $6 == exe)}
  code && /^Rss:/ {rss = $2} code && /^Referenced:/ {print rss, $2; exit}' "/proc/$daemon/smaps")
pmap -x "$daemon" | sort -k3 -n -r > "$OUT/idle-pmap.txt"
echo "## idle, ${IDLE} s after a 10 s warm-up"
echo
echo "| VmRSS min / median / max | VmHWM | RssAnon | RssFile | threads | CPU over the window |"
echo "|---|---|---|---|---|---|"
sort -n "$work/idle/rss" | awk -v hwm="$(kb "$daemon" VmHWM)" -v anon="$(kb "$daemon" RssAnon)" -v file="$(kb "$daemon" RssFile)" \
  -v thr="$(kb "$daemon" Threads)" -v t="$((t1 - t0))" -v hz="$hz" -v w="$IDLE" '
  { v[NR] = $1 }
  END { printf "| %d / %d / %d KiB | %d KiB | %d KiB | %d KiB | %d | %.2f s (%.2f %% of one core) |\n",
        v[1], v[int((NR + 1) / 2)], v[NR], hwm, anon, file, thr, t / hz, 100 * t / hz / w }'
echo
echo "Touched during the window (smaps Referenced after clear_refs at its start): $referenced KiB in all; the binary's code mapping: ${code_touched#* } of ${code_touched% *} KiB resident."
echo "Threads by name: $(for t in /proc/$daemon/task/*; do cat "$t/comm"; done | sed 's/[0-9]*$//' | sort | uniq -c | awk '{printf "%s%s x%d", sep, $2, $1; sep=", "}')"
echo "Largest mappings (pmap -x, KiB resident): $(awk '$1 ~ /^[0-9a-f]+$/ && $3 > 512 {
  n = $6; for (i = 7; i <= NF; i++) n = n " " $i; sub(".*/", "", n); printf "%s%s %s %s", sep, n, $5, $3; sep = "; " }' "$OUT/idle-pmap.txt")"
stop_pair
echo

# ---- uploads
echo "## uploading"
echo
echo "| file | VmRSS idle before | VmRSS peak while uploading | of which RssAnon / RssFile | VmHWM after | VmRSS 3 s after | enqueue → stored |"
echo "|---|---|---|---|---|---|---|"
for mb in "$@"; do
  d="$work/up$(echo "$mb" | tr -c 'a-z0-9\n' _)"; mkdir -p "$d"
  case $mb in
  photo:*)
    # A camera photograph (the capture bench's photo-like frame, q92 4:2:2),
    # which the hub's Telestation-Transport makes the daemon recompress.
    size=${mb#photo:}
    python3 bench/capture/make_frame.py "${size%x*}" "${size#*x}" "$d/frame.ppm"
    cjpeg -quality 92 -sample 2x1 -outfile "$d/image.jpg" "$d/frame.ppm"; rm "$d/frame.ppm" ;;
  *)
    side=$(python3 -c "import math; print(int(math.sqrt($mb * 1e6 / 1.985)) // 16 * 16)")
    python3 -c "import os,sys; w=h=$side; sys.stdout.buffer.write(b'P6 %d %d 255\n' % (w, h) + os.urandom(w * h * 3))" > "$d/noise.ppm"
    cjpeg -quality 100 -outfile "$d/image.jpg" "$d/noise.ppm"; rm "$d/noise.ppm" ;;
  esac
  bytes=$(stat -c %s "$d/image.jpg")
  start_pair "$d"
  sleep 5
  idle=$(kb "$daemon" VmRSS)
  "$BIN/telestation" enqueue "$d/image.jpg" --config "$d/station.toml" --case 40123456 --site arm_left >/dev/null 2>"$d/enqueue.err"
  start=$(date +%s.%N); peak=$idle; split="-"
  # Done when the hub has stored the image and its preview (a metadata file each).
  until [ "$(find "$d/hub" -maxdepth 1 -name '*.json' | wc -l)" -ge 2 ]; do
    r=$(kb "$daemon" VmRSS)
    [ "$r" -gt "$peak" ] && { peak=$r; split="$(kb "$daemon" RssAnon) / $(kb "$daemon" RssFile) KiB"; }
    kill -0 "$daemon" 2>/dev/null || { echo "the daemon exited:" >&2; tail "$d/daemon.err" >&2; exit 1; }
    sleep 0.1
  done
  end=$(date +%s.%N)
  hwm=$(kb "$daemon" VmHWM)
  # What the daemon keeps once the upload is over.
  sleep 3
  after=$(kb "$daemon" VmRSS)
  stop_pair
  rm -f "$d/image.jpg"
  sent=$(grep -o 'recompressed for the link: [0-9]* → [0-9]* bytes' "$d/daemon.err" | head -n 1 | sed 's/.*: /recompressed /')
  case $mb in photo:*) label="photo ${mb#photo:}" ;; *) label="$mb MB" ;; esac
  printf '| %s (%s bytes%s) | %s KiB | %s KiB (+%s) | %s | %s KiB | %s KiB | %.1f s |\n' "$label" "$bytes" "${sent:+, $sent}" "$idle" "$peak" \
    "$((peak - idle))" "$split" "$hwm" "$after" "$(echo "$end - $start" | bc)"
done
