#!/bin/sh
# Encode cost in instructions, which a shared or busy machine does not
# disturb: the station's YUYV encode (plane split + TurboJPEG) against
# tjbench's compress-from-YUV on the same frame, each counted by
# valgrind's callgrind as instructions per call of the encoding function.
# usage: bench/capture/instructions.sh   (needs valgrind, libjpeg-turbo-progs)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v tjbench >/dev/null || apt-get install -y libjpeg-turbo-progs
command -v valgrind >/dev/null || apt-get install -y valgrind

cp "$HERE/EncodeBench.swift" "$WORK/main.swift"
swiftc -O -I "$ROOT/Sources/CTurboJPEG" "$ROOT"/Sources/Imaging/*.swift "$WORK/main.swift" -o "$WORK/encode-bench"

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), libjpeg-turbo $(dpkg-query -W -f '${Version}' libturbojpeg0 2>/dev/null), valgrind $(valgrind --version)"
for size in 1920x1080 2592x1944; do
    w=${size%x*}; h=${size#*x}
    python3 "$HERE/make_frame.py" "$w" "$h" "$WORK/frame.ppm"
    mkdir -p "$WORK/out"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/station.cg" \
        "$WORK/encode-bench" "$WORK/frame.ppm" 92 0.001 "$WORK/out" encode-only >/dev/null 2>&1
    (cd "$WORK" && valgrind --tool=callgrind --callgrind-out-file="$WORK/tjbench.cg" \
        tjbench frame.ppm 92 -rgb -subsamp 422 -yuv -componly -nowrite -benchtime 0.01 -warmup 0 >/dev/null 2>&1)
    ours=$(python3 "$HERE/callgrind_calls.py" "$WORK/station.cg" 'JPEGEncoderC6encode.*RawFrameView' | awk '{print $3}')
    split=$(python3 "$HERE/callgrind_calls.py" "$WORK/station.cg" 'Deinterleave.*yuyv' | awk '{print $3}')
    lib=$(python3 "$HERE/callgrind_calls.py" "$WORK/station.cg" '^tjCompressFromYUVPlanes$' | awk '{print $3}')
    theirs=$(python3 "$HERE/callgrind_calls.py" "$WORK/tjbench.cg" '^tjCompressFromYUV$' | awk '{print $3}')
    echo "$size: station encode $ours Ir/frame (YUYV split $split, TurboJPEG $lib), tjbench comp-from-YUV $theirs Ir/frame, ratio $(echo "$ours $theirs" | awk '{printf "%.3f", $1 / $2}')x"
done
