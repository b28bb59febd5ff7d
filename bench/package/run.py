#!/usr/bin/env python3
"""What a station downloads for an update, and what it is made of.

    make deb && python3 bench/package/run.py [DEB_DIR] [RELEASE_BIN]

Defaults: .build-deb and .build/release. Prints Markdown: the .deb and
-dbgsym sizes and the time each takes at 128 kbit/s (payload ÷ rate, no
protocol overhead: the floor); the release binary unstripped and as shipped
(stripped, from the package's staging directory); the shipped binary's
largest parts by section, with Foundation's ICU data (one symbol in .rodata)
counted on its own, and the ICU data's share of the .deb measured by
compressing it alone the way dpkg-deb compresses the package (xz -6).
"""
import glob
import lzma
import os
import re
import subprocess
import sys

deb_dir = sys.argv[1] if len(sys.argv) > 1 else ".build-deb"
release_bin = sys.argv[2] if len(sys.argv) > 2 else ".build/release"
RATE = 128_000  # bit/s


def run(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def at_rate(n):
    s = n * 8 / RATE
    return f"{int(s // 60)} min {int(s % 60):02d} s"


def mb(n):
    return f"{n / 1e6:.1f} MB"


debs = sorted(glob.glob(os.path.join(deb_dir, "telestation_*.deb")))
dbgs = sorted(glob.glob(os.path.join(deb_dir, "telestation-dbgsym_*.deb")))
if not debs or not dbgs:
    sys.exit(f"no telestation_*.deb and telestation-dbgsym_*.deb in {deb_dir}; run make deb first")
deb, dbg = debs[-1], dbgs[-1]
stage = deb[: -len(".deb")]
shipped = os.path.join(stage, "usr/bin/telestation")
unstripped = os.path.join(release_bin, "telestation")
for f in (shipped, unstripped):
    if not os.path.isfile(f):
        sys.exit(f"{f} is missing; run make deb (it stages the package in {deb_dir})")

print("| file | bytes | size | at 128 kbit/s |")
print("|---|---|---|---|")
for f in (deb, dbg):
    n = os.path.getsize(f)
    inst = run("dpkg-deb", "-f", f, "Installed-Size").strip()
    print(f"| `{os.path.basename(f)}` (installed {int(inst) / 1024:.1f} MiB) | {n} | {mb(n)} | {at_rate(n)} |")
for label, f in (("release binary, unstripped", unstripped), ("shipped binary, stripped", shipped)):
    n = os.path.getsize(f)
    print(f"| {label} (`telestation`) | {n} | {mb(n)} | |")
print(f"| `telestation-hub` | symlink to `{os.readlink(os.path.join(stage, 'usr/bin/telestation-hub'))}` | | |")

# Sections of the shipped binary, ICU data split out of .rodata.
sections = {}
for line in run("readelf", "-SW", shipped).splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
    if m and m.group(2) != "NOBITS":
        sections[m.group(1)] = (int(m.group(3), 16), int(m.group(4), 16), int(m.group(5), 16))
icu = None
for line in run("nm", "-S", unstripped).splitlines():
    parts = line.split()
    if len(parts) == 4 and re.fullmatch(r"(telestation_)?icudt\d+_dat", parts[3]):
        icu = (parts[3], int(parts[0], 16), int(parts[1], 16))
total = os.path.getsize(shipped)
groups = {
    "ICU data (`%s`, in .rodata)" % (icu[0] if icu else "icudt*_dat"): icu[2] if icu else 0,
    ".rodata without the ICU data": sections.get(".rodata", (0, 0, 0))[2] - (icu[2] if icu else 0),
    ".text (code)": sections.get(".text", (0, 0, 0))[2],
    ".eh_frame + .eh_frame_hdr (unwind tables)": sum(sections.get(s, (0, 0, 0))[2] for s in (".eh_frame", ".eh_frame_hdr")),
    ".dynsym, .dynstr, .gnu.hash, .rela.dyn (exported names, relocations)":
        sum(sections.get(s, (0, 0, 0))[2] for s in (".dynsym", ".dynstr", ".gnu.hash", ".rela.dyn")),
}
groups["everything else"] = total - sum(groups.values())
print()
print("| part of the shipped binary | bytes | share |")
print("|---|---|---|")
for k, v in groups.items():
    print(f"| {k} | {v} | {100 * v / total:.0f} % |")

if icu:
    addr, off, _ = sections[".rodata"]
    with open(shipped, "rb") as fh:
        fh.seek(icu[1] - addr + off)
        data = fh.read(icu[2])
    assert data[8:12] == b"\x00\x02\x00\x00" or b"CmnD" in data[:32], "ICU data symbol did not point at ICU data"
    z = len(lzma.compress(data, preset=6))
    print()
    print(f"ICU data alone, xz -6: {z} bytes ({mb(z)}) = {100 * z / os.path.getsize(deb):.0f} % of the .deb, "
          f"{at_rate(z)} at 128 kbit/s.")
