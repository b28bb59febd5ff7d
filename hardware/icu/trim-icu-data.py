#!/usr/bin/env python3
"""The ICU data the release binary links, without what the station never reads.

    hardware/icu/trim-icu-data.py LIB_FOUNDATIONICU_A OUT_DIR [LINKED_BINARY]

The static Swift runtime links Foundation's whole ICU data file (34 MB, 41 %
of the .deb after xz; bench/package/RESULTS.md) as one symbol, icudt76_dat,
alone in the archive member icu_packaged_data.cpp.o. This script takes that
file out of the toolchain's lib_FoundationICU.a, drops the items listed in
DROP, and writes OUT_DIR/icudata.o, which defines telestation_icudt76_dat over
the smaller file, and OUT_DIR/link-flags, the `swift build` flags that link it
and point ICU's symbol at it (--defsym): with the symbol defined from the
start, the linker never pulls the archive's member. (Defining icudt76_dat
itself does not work: swiftc puts -Xlinker objects after the archives, and the
link fails on the duplicate symbol.) When the object changes, LINKED_BINARY is
removed: SwiftPM does not track the object and would not link again.

The file is ICU's common data package ("CmnD", the layout icupkg writes): a
header, a table of contents sorted by item name (ICU binary-searches it), the
names, and the items at 16-byte boundaries. Debian 12's icupkg (ICU 72)
cannot read ICU 76's package (more than 100 000 bytes of item names), so the
table is rewritten here; every kept item is copied byte for byte and checked
against the original after writing.

What is dropped, and why the station never reads it (it reads and writes
UTF-8 only, formats dates in en_US_POSIX and the system's locale, and uses
ICU regular expressions, time zones and the Gregorian calendar):
"""
import fnmatch
import os
import struct
import subprocess
import sys
import tempfile

# (pattern on the item name without its icudtNNl/ prefix, reason). An item is
# dropped when it matches a pattern and none of KEEP.
DROP = [
    ("*.cnv", "charset converters (Shift-JIS, EBCDIC, …): UTF-8/16/32, ASCII and "
              "Latin-1 are algorithmic in ICU and need none; the alias table stays"),
    ("brkitr/*.dict", "word-break dictionaries for Chinese, Japanese, Thai, Lao, Khmer, Burmese"),
    ("translit/*", "transliteration rules (String.applyingTransform)"),
    ("coll/*", "collation tailorings of other languages: they sort in the root order instead"),
]
KEEP = [
    "coll/root.res", "coll/ucadata.icu", "coll/res_index.res",  # the root collation every locale falls back to
    "coll/es*", "coll/en*",  # the kiosk's languages' own orders (Quechua and Aymara have none in ICU)
]

__doc__ += "".join(f"\n  {p:16} {why}" for p, why in DROP) + "\n"


def fail(msg):
    sys.exit(f"trim-icu-data: {msg}")


def read_package(data):
    """(header bytes, [(name, item bytes)]) of an ICU common data package."""
    header_size, magic1, magic2 = struct.unpack_from("<HBB", data, 0)
    if (magic1, magic2) != (0xDA, 0x27) or data[12:16] != b"CmnD":
        fail("not an ICU common data package (no CmnD header)")
    if data[8] != 0:
        fail("the ICU data is big-endian; this script writes little-endian tables only")
    toc = data[header_size:]
    count = struct.unpack_from("<I", toc, 0)[0]
    entries = [struct.unpack_from("<II", toc, 4 + 8 * i) for i in range(count)]
    items = []
    for i, (name_off, data_off) in enumerate(entries):
        name = toc[name_off:toc.index(b"\0", name_off)].decode("ascii")
        end = entries[i + 1][1] if i + 1 < count else len(toc)
        items.append((name, toc[data_off:end]))
    return data[:header_size], items


def write_package(header, items):
    header_size = len(header)
    count = len(items)
    names = b"".join(n.encode("ascii") + b"\0" for n, _ in items)
    name_off = 4 + 8 * count
    data_off = name_off + len(names)
    data_off += -(header_size + data_off) % 16
    entries, blobs, n_off, d_off = [], [], name_off, data_off
    for name, blob in items:
        pad = -(header_size + d_off) % 16
        blobs.append(b"\0" * pad + blob)
        entries.append((n_off, d_off + pad))
        n_off += len(name) + 1
        d_off += pad + len(blob)
    toc = struct.pack("<I", count) + b"".join(struct.pack("<II", *e) for e in entries) + names
    toc += b"\0" * (data_off - len(toc))
    return header + toc + b"".join(blobs)


def dropped(item):
    return (any(fnmatch.fnmatchcase(item, p) for p, _ in DROP)
            and not any(fnmatch.fnmatchcase(item, k) for k in KEEP))


def main():
    if len(sys.argv) not in (3, 4):
        fail("usage: trim-icu-data.py LIB_FOUNDATIONICU_A OUT_DIR [LINKED_BINARY]")
    archive, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        member = os.path.join(tmp, "icu_packaged_data.cpp.o")
        with open(member, "wb") as f:
            r = subprocess.run(["ar", "p", archive, "icu_packaged_data.cpp.o"], stdout=f)
        if r.returncode != 0 or os.path.getsize(member) == 0:
            fail(f"{archive} has no member icu_packaged_data.cpp.o (a toolchain that packs ICU's data differently?)")
        syms = subprocess.run(["nm", "-S", "--defined-only", member], capture_output=True, text=True, check=True).stdout.split()
        # One line: OFFSET SIZE TYPE NAME
        if len(syms) != 4 or not syms[3].startswith("icudt") or not syms[3].endswith("_dat") or int(syms[0], 16) != 0:
            fail(f"icu_packaged_data.cpp.o should define only the data symbol, at offset 0; it defines: {' '.join(syms)}")
        symbol, size = syms[3], int(syms[1], 16)
        raw = os.path.join(tmp, "data.dat")
        subprocess.run(["objcopy", "-O", "binary", "--only-section=.rodata", member, raw], check=True)
        with open(raw, "rb") as f:
            original = f.read()[:size]
    header, items = read_package(original)
    prefix = items[0][0].split("/", 1)[0] + "/"
    if not all(n.startswith(prefix) for n, _ in items):
        fail(f"items outside {prefix}")
    kept = [(n, b) for n, b in items if not dropped(n[len(prefix):])]
    trimmed = write_package(header, kept)

    # Check: the table reads back, sorted, with every kept item as it was.
    _, back = read_package(trimmed)
    if [n for n, _ in back] != [n for n, _ in kept] or [n for n, _ in back] != sorted(n for n, _ in back):
        fail("the rewritten table of contents does not read back as written")
    for (n, b), (_, b2) in zip(kept, back):
        if b2[:len(b)] != b or any(b2[len(b):]):
            fail(f"{n} changed in the rewritten package")

    own = "telestation_" + symbol
    dat = os.path.join(out, prefix.rstrip("/") + ".dat")
    asm = os.path.join(out, "icudata.S")
    obj = os.path.join(out, "icudata.o")
    before = open(obj, "rb").read() if os.path.exists(obj) else None
    with open(dat, "wb") as f:
        f.write(trimmed)
    with open(asm, "w") as f:
        f.write(f"""\t.section .rodata.{own},"a"
\t.balign 16
\t.globl {own}
\t.type {own}, %object
{own}:
\t.incbin "{os.path.abspath(dat)}"
\t.size {own}, . - {own}
\t.section .note.GNU-stack,"",%progbits
""")
    subprocess.run(["as", "-o", obj, asm], check=True)
    with open(os.path.join(out, "link-flags"), "w") as f:
        f.write(f"-Xlinker {os.path.abspath(obj)} -Xlinker --defsym={symbol}={own}\n")
    if len(sys.argv) == 4 and open(obj, "rb").read() != before and os.path.exists(sys.argv[3]):
        os.remove(sys.argv[3])
        print(f"trim-icu-data: the ICU data changed; {sys.argv[3]} removed to be linked again")
    print(f"trim-icu-data: {symbol}: {len(kept)} of {len(items)} items, "
          f"{len(trimmed):,} of {len(original):,} bytes -> {obj}")


if __name__ == "__main__":
    main()
