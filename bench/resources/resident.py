#!/usr/bin/env python3
"""Which parts of a running telestation binary are resident, by section.

    sudo python3 bench/resources/resident.py PID [UNSTRIPPED_BINARY]

Reads /proc/PID/maps and /proc/PID/pagemap (root: the present bit is
readable by anyone, but the mapping needs the binary's own path) and counts,
for each section of the executable, the 4 KiB pages the process has mapped
in. With the unstripped binary (symbols), the ICU data symbol (icudt*_dat)
is counted apart from the rest of .rodata, and the largest resident text
symbols' modules are summed by Swift module name prefix when they can be
told. Anonymous memory (heap, stacks) is summed by mapping name.
"""
import os
import re
import struct
import subprocess
import sys

pid = int(sys.argv[1])
exe = os.readlink(f"/proc/{pid}/exe")
syms_from = sys.argv[2] if len(sys.argv) > 2 else exe
PAGE = os.sysconf("SC_PAGE_SIZE")

# Mappings of the executable: virtual start/end and file offset.
maps = []
anon = {}
for line in open(f"/proc/{pid}/maps"):
    f = line.split()
    lo, hi = (int(x, 16) for x in f[0].split("-"))
    name = f[5] if len(f) > 5 else "[anon]"
    if name == exe:
        maps.append((lo, hi, int(f[2], 16)))
    else:
        anon.setdefault(name, []).append((lo, hi))

pm = open(f"/proc/{pid}/pagemap", "rb")


def present(lo, hi):
    """Virtual page addresses in [lo, hi) that are present (or swapped)."""
    pm.seek(lo // PAGE * 8)
    raw = pm.read((hi - lo) // PAGE * 8)
    out = []
    for i, (e,) in enumerate(struct.iter_unpack("<Q", raw)):
        if e >> 63 & 1:
            out.append(lo + i * PAGE)
    return out


# File offsets of the executable's resident pages.
resident_offsets = set()
load_bias = None
for lo, hi, off in maps:
    if load_bias is None:
        load_bias = lo - off  # the first mapping starts at file offset 0
    for va in present(lo, hi):
        resident_offsets.add(va - lo + off)

# Sections: file offset ranges.
sections = []
for line in subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True, check=True).stdout.splitlines():
    m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+(\S+)\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)", line)
    if m and m.group(2) != "NOBITS" and int(m.group(3), 16):
        sections.append((m.group(1), int(m.group(3), 16), int(m.group(4), 16), int(m.group(5), 16)))

icu = None
for line in subprocess.run(["nm", "-S", syms_from], capture_output=True, text=True).stdout.splitlines():
    p = line.split()
    if len(p) == 4 and re.fullmatch(r"icudt\d+_dat", p[3]):
        icu = (int(p[0], 16), int(p[1], 16))


def count(off_lo, off_hi):
    return sum(1 for o in range(off_lo // PAGE * PAGE, off_hi, PAGE) if o in resident_offsets)


print(f"pid {pid}: {exe}")
print(f"{'section':28} {'size KiB':>10} {'resident KiB':>13}")
total = 0
for name, addr, off, size in sections:
    if name == ".rodata" and icu:
        icu_off = icu[0] - addr + off
        r_icu = count(icu_off, icu_off + icu[1])
        r_rest = count(off, off + size) - r_icu
        print(f"{'.rodata (ICU data)':28} {icu[1] // 1024:>10} {r_icu * PAGE // 1024:>13}")
        print(f"{'.rodata (rest)':28} {(size - icu[1]) // 1024:>10} {r_rest * PAGE // 1024:>13}")
        total += r_icu + r_rest
        continue
    r = count(off, off + size)
    total += r
    if size >= 64 * 1024 or r:
        print(f"{name:28} {size // 1024:>10} {r * PAGE // 1024:>13}")
print(f"{'binary, all sections':28} {'':>10} {total * PAGE // 1024:>13}")

print()
print("other mappings, resident KiB:")
rows = []
for name, ranges in anon.items():
    r = sum(len(present(lo, hi)) for lo, hi in ranges)
    if r:
        rows.append((r * PAGE // 1024, name, len(ranges)))
for kib, name, n in sorted(rows, reverse=True)[:15]:
    print(f"  {kib:>8}  {name} ({n} mapping{'s' if n > 1 else ''})")
