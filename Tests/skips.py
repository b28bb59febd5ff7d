#!/usr/bin/env python3
"""Skipped tests, reported in one format and judged against one allow-list.

A skipped test passes nothing: under `make test` every skip is recorded, and
the run fails at the end unless Tests/skips.allow lists the skip's ID with
the reason it is acceptable. Stages record skips in TEST_SKIP_FILE (the
Makefile sets it to .build/test-skips/STAGE.txt under `make test`), one line
each:

    STAGE ID: reason

Without TEST_SKIP_FILE (a stage or script run by hand) a skip is judged at
once: allowed skips are printed, any other fails the command.

    skips.py add ID REASON              record one skip
    skips.py swift-log MODULE LOG       the skips in a `swift test` log (Swift
                                        Testing and XCTest), and fail if the
                                        log shows no test ran at all
    skips.py vm RESULTS_MD              `- SKIP ID: reason` lines of the VM harness
    skips.py check DIR                  print every skip recorded under DIR, fail
                                        if one is not in the allow-list
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALLOW = os.path.join(ROOT, "Tests", "skips.allow")


def allow_list(path=ALLOW):
    """ID -> reason, from lines `ID  reason`; # starts a comment."""
    allowed = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split(None, 1)
            if len(parts) < 2:
                sys.exit(f"{path}:{n}: `{line}` has no reason; write `ID  why skipping it is acceptable`")
            allowed[parts[0]] = parts[1]
    return allowed


def report(skips):
    """Records [(id, reason)], or judges them at once without TEST_SKIP_FILE.
    Returns the exit status."""
    path = os.environ.get("TEST_SKIP_FILE")
    for sid, reason in skips:
        print(f"SKIP {sid}: {reason}", flush=True)
    if path:
        stage = os.path.basename(path)[:-len(".txt")] if path.endswith(".txt") else os.path.basename(path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "a") as f:
            for sid, reason in skips:
                f.write(f"{stage} {sid}: {' '.join(reason.split())}\n")
        return 0
    allowed = allow_list()
    bad = [sid for sid, _ in skips if sid not in allowed]
    for sid in bad:
        print(f"FAIL: {sid} was skipped and Tests/skips.allow does not allow it", file=sys.stderr)
    return 1 if bad else 0


# Swift Testing: `<symbol> Test name() skipped: "comment"` (or `Suite`, or
# without a comment `... skipped.`); XCTest: `Test Case 'X.y' skipped`.
SWIFT_TESTING_SKIP = re.compile(r'(?:Test|Suite) (.+?) skipped(?:: "(.*)")?\.?\s*$')
XCTEST_SKIP = re.compile(r"Test Case '([^']+)' skipped")
RAN = re.compile(r"Test run with (\d+) tests?\b")
XCTEST_RAN = re.compile(r"Executed (\d+) tests?,")


def swift_log(module, text):
    """(skips, tests run) in the output of one `swift test` run."""
    skips, ran = [], 0
    for line in text.splitlines():
        m = XCTEST_SKIP.search(line)
        if m:
            skips.append((f"{module}/{m.group(1)}", "XCTest skip (its reason is in the log)"))
            continue
        m = SWIFT_TESTING_SKIP.search(line)
        if m and "Test Case '" not in line:
            skips.append((f"{module}/{m.group(1)}", m.group(2) or "no reason given"))
            continue
        for pattern in (RAN, XCTEST_RAN):
            m = pattern.search(line)
            if m:
                ran += int(m.group(1))
    return skips, ran


def vm_skips(text):
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^- SKIP (\S+): (.*)$", text, re.M)]


def check(directory, allowed):
    """Prints every recorded skip with its reason; returns the exit status."""
    lines = []
    if os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            if name.endswith(".txt"):
                with open(os.path.join(directory, name)) as f:
                    lines += [l.rstrip("\n") for l in f if l.strip()]
    print(f"\nskipped tests: {len(lines)} (allowed ones are listed in {os.path.relpath(ALLOW, os.getcwd())})")
    bad = 0
    seen = set()
    for line in lines:
        m = re.match(r"(\S+) (\S+): (.*)$", line)
        if not m:
            print(f"  {line}    <- NOT in the skip format `STAGE ID: reason`")
            bad += 1
            continue
        stage, sid, reason = m.groups()
        seen.add(sid)
        if sid in allowed:
            print(f"  {stage} {sid}: {reason}\n      allowed: {allowed[sid]}")
        else:
            print(f"  {stage} {sid}: {reason}\n      NOT ALLOWED: fix the test or its environment, or list {sid} in Tests/skips.allow with the reason")
            bad += 1
    for sid in sorted(set(allowed) - seen):
        print(f"  (allowed, not skipped in this run: {sid})")
    if bad:
        print(f"{bad} skip(s) not allowed: make test fails")
    return 1 if bad else 0


def main(argv):
    if len(argv) == 4 and argv[1] == "add":
        return report([(argv[2], argv[3])])
    if len(argv) == 4 and argv[1] == "swift-log":
        with open(argv[3], errors="replace") as f:
            skips, ran = swift_log(argv[2], f.read())
        status = report(skips)
        if ran == 0:
            print(f"FAIL: the swift test log of {argv[2]} shows no test run (a filter that matches nothing?)", file=sys.stderr)
            return 1
        return status
    if len(argv) == 3 and argv[1] == "vm":
        with open(argv[2]) as f:
            return report(vm_skips(f.read()))
    if len(argv) == 3 and argv[1] == "check":
        return check(argv[2], allow_list())
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
