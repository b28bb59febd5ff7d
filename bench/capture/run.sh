#!/bin/sh
# Still-path benchmark: the station's YUYV encode against libjpeg-turbo's own
# tjbench on the same frames, and shutter-to-JPEG-on-disk latency.
# usage: bench/capture/run.sh [seconds-per-measurement]   (needs libjpeg-turbo-progs)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${1:-5}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v tjbench >/dev/null || apt-get install -y libjpeg-turbo-progs

# The bench driver built from the package's own modules, optimised.
(cd "$ROOT" && swift build -c release --product station-bench >/dev/null)
BENCH="$ROOT/.build/release/station-bench"

echo "# $(date -u +%Y-%m-%dT%H:%MZ), commit $(git -C "$ROOT" rev-parse --short=7 HEAD), on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# libjpeg-turbo $(dpkg-query -W -f '${Version}' libturbojpeg0 2>/dev/null), swift $(swift --version 2>&1 | head -n 1 | sed 's/.*version \([^ ]*\).*/\1/')"
for size in 1920x1080 2592x1944; do
    w=${size%x*}; h=${size#*x}
    python3 "$HERE/make_frame.py" "$w" "$h" "$WORK/frame-$size.ppm"
    mkdir -p "$WORK/out-$size"
    "$BENCH" "$WORK/frame-$size.ppm" 92 "$SECS" "$WORK/out-$size"
    # tjbench: same frame, same quality, 4:2:2 like YUYV. With -yuv it times
    # the RGB→YUV step and the compress-from-YUV step separately; the latter
    # is the work the station's encoder does after splitting the YUYV planes.
    (cd "$WORK" && tjbench "frame-$size.ppm" 92 -rgb -subsamp 422 -yuv -componly -nowrite -benchtime "$SECS" -warmup 1) \
        | grep -E "Encode YUV|Compress|Frame rate|Throughput|Output" | sed "s/^/tjbench $size: /"
    # Paired rounds: on a shared machine load drifts within seconds, so run
    # both in alternation and compare each side's best mean. Full-range
    # YUYV, and limited range (vivid and most UVC cameras), whose split
    # also stretches the range.
    for range in full limited; do
    ours=0; theirs=0
    for round in 1 2 3 4 5 6; do
        o=$(BENCH_RANGE=$range "$BENCH" "$WORK/frame-$size.ppm" 92 1 "$WORK/out-$size" encode-only | sed 's/.*mean [0-9.]* ms = \([0-9.]*\) MP\/s.*/\1/')
        t=$(cd "$WORK" && tjbench "frame-$size.ppm" 92 -rgb -subsamp 422 -yuv -componly -nowrite -benchtime 1 -warmup 0.3 \
            | grep -A3 "Comp from YUV" | grep Throughput | awk '{print $2}')
        ours=$(echo "$o $ours" | awk '{print ($1 > $2) ? $1 : $2}')
        theirs=$(echo "$t $theirs" | awk '{print ($1 > $2) ? $1 : $2}')
    done
    echo "paired $range-range $size: best of 6 alternating 1 s rounds: station $ours MP/s, tjbench comp-from-YUV $theirs MP/s, ratio $(echo "$theirs $ours" | awk '{printf "%.2f", $1 / $2}')x"
    done
    # cjpeg: the library's command-line encoder from the PPM, whole-process time.
    start=$(date +%s%N)
    for i in 1 2 3 4 5; do cjpeg -quality 92 -sample 2x1 "$WORK/frame-$size.ppm" > "$WORK/cjpeg.jpg"; done
    echo "cjpeg $size q92 4:2:2: $(( ($(date +%s%N) - start) / 5000000 )) ms per run (process start, PPM read, RGB→YCbCr, compress), $(stat -c %s "$WORK/cjpeg.jpg") bytes"
done
