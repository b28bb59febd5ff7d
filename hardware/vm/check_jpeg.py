#!/usr/bin/env python3
"""Checks a JPEG written by `telestation capture` independently of the
station's own code: libjpeg-turbo's djpeg decodes it, this script checks the
size and, optionally, that it shows vivid's eight colour bars.

usage: check_jpeg.py FILE WIDTH HEIGHT [--bars]
Exits 0 when every check passes; prints what it measured either way.
"""
import colorsys
import subprocess
import sys

# vivid's colour bars, left to right (75% or 100%): expected hue in degrees,
# or None for the grey (white) and black bars.
BARS = [("white", None), ("yellow", 60), ("cyan", 180), ("green", 120),
        ("magenta", 300), ("red", 0), ("blue", 240), ("black", None)]


def decode(path):
    ppm = subprocess.run(["djpeg", "-ppm", path], check=True, capture_output=True).stdout
    # P6\n<w> <h>\n<max>\n<data>, with no comments from djpeg.
    fields, pos = [], 0
    while len(fields) < 4:
        while ppm[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not ppm[end:end + 1].isspace():
            end += 1
        fields.append(ppm[pos:end])
        pos = end
    assert fields[0] == b"P6", "djpeg did not produce a PPM"
    return int(fields[1]), int(fields[2]), ppm[pos + 1:]


def patch_mean(width, data, cx, cy, r=4):
    s = [0, 0, 0]
    n = 0
    for y in range(cy - r, cy + r + 1):
        for x in range(cx - r, cx + r + 1):
            i = (y * width + x) * 3
            for c in range(3):
                s[c] += data[i + c]
            n += 1
    return [v / n for v in s]


def main():
    path, want_w, want_h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    bars = "--bars" in sys.argv
    w, h, data = decode(path)
    problems = []
    if (w, h) != (want_w, want_h):
        problems.append(f"size {w}x{h}, expected {want_w}x{want_h}")
    if bars and not problems:
        report = []
        for i, (name, hue) in enumerate(BARS):
            # Below vivid's text overlay, in the middle of the bar.
            r, g, b = patch_mean(w, data, (2 * i + 1) * w // 16, h * 3 // 4)
            hh, ll, ss = colorsys.rgb_to_hls(r / 255, g / 255, b / 255)
            report.append(f"{name}=({r:.0f},{g:.0f},{b:.0f})")
            if hue is None:
                if name == "black" and ll > 0.15:
                    problems.append(f"black bar is not dark: {r:.0f},{g:.0f},{b:.0f}")
                if name == "white" and (ll < 0.6 or ss > 0.15):
                    problems.append(f"white bar is not a light grey: {r:.0f},{g:.0f},{b:.0f}")
                continue
            d = abs(hh * 360 - hue) % 360
            d = min(d, 360 - d)
            if ss < 0.5 or d > 15:
                problems.append(f"{name} bar has hue {hh * 360:.0f} (saturation {ss:.2f}), expected {hue}")
        print(" ".join(report))
    if problems:
        print(f"{path}: " + "; ".join(problems))
        sys.exit(1)
    print(f"{path}: {w}x{h} ok")


if __name__ == "__main__":
    main()
