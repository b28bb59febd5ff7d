#!/usr/bin/env python3
"""Writes a deterministic photo-like test frame as PPM: smooth shading,
skin-like tones, fine texture and sharp edges, so JPEG sizes and speeds are
closer to a real lesion photograph than colour bars would be.

usage: make_frame.py WIDTH HEIGHT OUT.ppm
"""
import math
import random
import sys

w, h, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(1234)
noise = bytes(rng.randrange(256) for _ in range(4096))
row = bytearray(w * 3)
with open(out, "wb") as f:
    f.write(b"P6\n%d %d\n255\n" % (w, h))
    cx, cy, r = w * 0.55, h * 0.5, min(w, h) * 0.22
    for y in range(h):
        for x in range(w):
            # Skin-tone background with gentle shading.
            shade = 0.75 + 0.25 * math.cos((x / w - 0.5) * 2.5) * math.cos((y / h - 0.5) * 2.0)
            n = noise[(x * 7 + y * 131) & 4095] - 128
            rr, gg, bb = 200 * shade + n * 0.08, 150 * shade + n * 0.08, 120 * shade + n * 0.08
            # A darker irregular "lesion" with a sharp edge and texture.
            d = math.hypot(x - cx, y - cy) / (r * (1 + 0.15 * math.sin(7 * math.atan2(y - cy, x - cx))))
            if d < 1:
                rr, gg, bb = 110 + n * 0.25, 60 + n * 0.2, 50 + n * 0.2
            i = x * 3
            row[i] = max(0, min(255, int(rr)))
            row[i + 1] = max(0, min(255, int(gg)))
            row[i + 2] = max(0, min(255, int(bb)))
        f.write(row)
