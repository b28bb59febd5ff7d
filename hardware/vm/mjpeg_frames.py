#!/usr/bin/env python3
"""Recorded-camera MJPEG frames for the v4l2loopback checks, and the check
that a stored still is the camera's own JPEG.

  mjpeg_frames.py make OUTDIR      writes OUTDIR/no-dht.jpg (Huffman tables
      stripped, as UVC cameras send MJPEG) and OUTDIR/own-dht.jpg (optimised,
      non-standard Huffman tables), both 640x480 colour bars, made by cjpeg.
  mjpeg_frames.py check STORED SOURCE
      STORED must be SOURCE byte for byte, except for DHT segments added
      when SOURCE has none: then it must carry the four standard tables.
"""
import subprocess
import sys

BARS = [(191, 191, 191), (191, 191, 0), (0, 191, 191), (0, 191, 0),
        (191, 0, 191), (191, 0, 0), (0, 0, 191), (0, 0, 0)]
W, H = 640, 480


def segments(data):
    """(marker, bytes) for every segment up to and including SOS; then ('scan', rest)."""
    assert data[:2] == b"\xff\xd8", "no SOI"
    out = [(0xD8, data[:2])]
    i = 2
    while i < len(data):
        assert data[i] == 0xFF, f"no marker at {i}"
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2:i + 4], "big")
        out.append((marker, data[i:i + 2 + length]))
        i += 2 + length
        if marker == 0xDA:
            out.append(("scan", data[i:]))
            break
    return out


def make(outdir):
    row = b"".join(bytes(BARS[x * 8 // W]) for x in range(W))
    ppm = b"P6\n%d %d\n255\n" % (W, H) + row * H
    plain = subprocess.run(["cjpeg", "-quality", "85"], input=ppm, capture_output=True, check=True).stdout
    stripped = b"".join(seg for m, seg in segments(plain) if m != 0xC4)
    open(f"{outdir}/no-dht.jpg", "wb").write(stripped)
    own = subprocess.run(["cjpeg", "-quality", "85", "-optimize"], input=ppm, capture_output=True, check=True).stdout
    assert any(m == 0xC4 for m, _ in segments(own))
    open(f"{outdir}/own-dht.jpg", "wb").write(own)
    print(f"no-dht.jpg {len(stripped)} bytes, own-dht.jpg {len(own)} bytes")


def check(stored_path, source_path):
    stored, source = open(stored_path, "rb").read(), open(source_path, "rb").read()
    source_has_dht = any(m == 0xC4 for m, _ in segments(source))
    if source_has_dht:
        assert stored == source, f"{stored_path} ({len(stored)} bytes) differs from the camera's frame ({len(source)} bytes)"
        print(f"byte-identical to the camera's frame ({len(stored)} bytes, its own Huffman tables kept)")
        return
    dht = [seg for m, seg in segments(stored) if m == 0xC4]
    assert dht, "no Huffman tables were inserted"
    # Standard tables: DC luminance (class 0, id 0) ... AC chrominance (1, 1), 418 bytes of table data.
    ids = set()
    for seg in dht:
        body, i = seg[4:], 0
        while i < len(body):
            ids.add(body[i])
            i += 1 + 16 + sum(body[i + 1:i + 17])
    assert ids == {0x00, 0x01, 0x10, 0x11}, f"tables {sorted(hex(x) for x in ids)}"
    rest = b"".join(seg for m, seg in segments(stored) if m != 0xC4)
    assert rest == source, "apart from the DHT segment the still differs from the camera's frame (re-encoded?)"
    print(f"the camera's frame ({len(source)} bytes) plus the standard Huffman tables ({len(stored) - len(source)} bytes)")


if __name__ == "__main__":
    try:
        make(sys.argv[2]) if sys.argv[1] == "make" else check(sys.argv[2], sys.argv[3])
    except AssertionError as e:
        print(f"FAIL: {e}")
        sys.exit(1)
