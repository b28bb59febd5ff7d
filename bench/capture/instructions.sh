#!/bin/sh
# CPU cost in instructions, which a shared or busy machine does not disturb,
# each counted by valgrind's callgrind as instructions per call:
# - the station's YUYV encode (plane split + TurboJPEG) against tjbench's
#   compress-from-YUV on the same frame, for full-range and limited-range
#   YUYV (vivid and most UVC cameras flag limited range);
# - the enqueue path's preview (decode, resample, encode) of the camera JPEG;
# - transport recompression of that JPEG (libjxl, with the station's own
#   rebuild check) and the hub's rebuild.
# Built from the package's own modules in release mode (`station-bench`).
# usage: bench/capture/instructions.sh   (needs valgrind, libjpeg-turbo-progs)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
command -v tjbench >/dev/null || apt-get install -y libjpeg-turbo-progs
command -v valgrind >/dev/null || apt-get install -y valgrind

(cd "$ROOT" && swift build -c release --product station-bench >/dev/null)
# Valgrind 3.19 cannot read the DWARF 5 that Swift writes: count a copy
# without debug sections (the symbol table keeps the function names).
BENCH="$WORK/station-bench"
strip --strip-debug -o "$BENCH" "$ROOT/.build/release/station-bench"
per_call() { python3 "$HERE/callgrind_calls.py" "$1" "$2" | awk '{s += $1 * $3; n += $1} END {if (n) printf "%.0f", s / n}'; }
mega() { echo "$1 $2" | awk '{printf "%.2f M", $1 / 1e6 / $2}'; }

echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), commit $(git -C "$ROOT" rev-parse --short=7 HEAD), libjpeg-turbo $(dpkg-query -W -f '${Version}' libturbojpeg0 2>/dev/null), libjxl $(dpkg-query -W -f '${Version}' libjxl0.7 2>/dev/null), valgrind $(valgrind --version)"
for size in 1920x1080 2592x1944; do
    w=${size%x*}; h=${size#*x}
    mp=$(echo "$w $h" | awk '{print $1 * $2 / 1e6}')
    python3 "$HERE/make_frame.py" "$w" "$h" "$WORK/frame.ppm"
    mkdir -p "$WORK/out"
    (cd "$WORK" && valgrind --tool=callgrind --callgrind-out-file="$WORK/tjbench.cg" \
        tjbench frame.ppm 92 -rgb -subsamp 422 -yuv -componly -nowrite -benchtime 0.01 -warmup 0 >/dev/null 2>&1)
    theirs=$(per_call "$WORK/tjbench.cg" '^tjCompressFromYUV$')
    for range in full limited; do
        BENCH_RANGE=$range valgrind --tool=callgrind --callgrind-out-file="$WORK/station.cg" \
            "$BENCH" "$WORK/frame.ppm" 92 0.001 "$WORK/out" encode-only >/dev/null 2>&1
        ours=$(per_call "$WORK/station.cg" 'JPEGEncoderC6encode.*RawFrameView')
        lib=$(per_call "$WORK/station.cg" '^tjCompressFromYUVPlanes$')
        # Everything the station does besides TurboJPEG: the YUYV split (and
        # for limited range its stretch), buffers, the Data copy.
        echo "encode $range-range YUYV $size: station $ours Ir/frame (TurboJPEG $lib, the rest $((ours - lib))), tjbench comp-from-YUV $theirs Ir/frame, ratio $(echo "$ours $theirs" | awk '{printf "%.3f", $1 / $2}')x; $(mega "$ours" "$mp") Ir/MP"
    done
    cjpeg -quality 92 -sample 2x1 "$WORK/frame.ppm" > "$WORK/frame.jpg"
    valgrind --tool=callgrind --callgrind-out-file="$WORK/preview.cg" "$BENCH" preview "$WORK/frame.jpg" >/dev/null 2>&1
    preview=$(per_call "$WORK/preview.cg" 'PreviewO4make8fromJPEG5width7quality')
    echo "preview from the $size JPEG (480 px wide): $preview Ir; $(mega "$preview" "$mp") Ir/MP"
    out=$(valgrind --tool=callgrind --callgrind-out-file="$WORK/jxl.cg" "$BENCH" recompress "$WORK/frame.jpg" 1 2>/dev/null)
    make=$(per_call "$WORK/jxl.cg" 'RecompressedFileV4make')
    rebuild=$(per_call "$WORK/jxl.cg" 'RecompressedFileV7rebuild')
    echo "recompress the $size JPEG ($out): station $make Ir (of which its own rebuild check $rebuild), hub rebuild $rebuild Ir; $(mega "$make" "$mp") and $(mega "$rebuild" "$mp") Ir/MP"
done
