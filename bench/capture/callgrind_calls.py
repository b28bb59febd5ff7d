#!/usr/bin/env python3
"""Instructions per call of the functions whose names match a pattern, from a
callgrind output file: the inclusive cost recorded at every call site of the
function, summed, divided by the number of calls.

usage: callgrind_calls.py CALLGRIND_OUT REGEX
prints: "<calls> calls, <instructions per call> Ir per call, <name>" per match
"""
import re
import sys
from collections import defaultdict

path, pattern = sys.argv[1], re.compile(sys.argv[2])
names = {}
calls = defaultdict(int)
cost = defaultdict(int)
pending = None  # callee of the last calls= line
callee = None


def name_of(spec):
    # "(id) name" defines an id; "(id)" refers to one defined earlier.
    m = re.match(r"\((\d+)\)(?: (.*))?", spec)
    if not m:
        return spec
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), m.group(1))


with open(path, errors="replace") as f:
    for line in f:
        line = line.rstrip("\n")
        if line.startswith("fn="):
            name_of(line[3:])
        elif line.startswith("cfn="):
            callee = name_of(line[4:])
        elif line.startswith("calls="):
            pending = callee
            calls[pending] += int(line[6:].split()[0])
        elif pending is not None:
            parts = line.split()
            if len(parts) >= 2:
                cost[pending] += int(parts[1])
            pending = None

found = False
for name in sorted(calls):
    if pattern.search(name):
        found = True
        print(f"{calls[name]} calls, {cost[name] // max(1, calls[name])} Ir per call, {name}")
if not found:
    sys.exit(f"no function matching {pattern.pattern} in {path}")
