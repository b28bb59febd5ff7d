#!/usr/bin/env python3
"""Station uplink vs the physical floor vs tuspy on the same impaired link.

For each client in turn: a fresh telestation-hub and a fresh impaired proxy
(Tests/Support/impaired_proxy.py, identical settings), one preview followed by
N images. The hub's store is polled to record bytes the hub holds over time
(the acknowledged bytes), the time the preview is complete, and the time
the last image is complete, all from the client's first connection. The floor is payload / rate / uptime fraction.
Writes results.json and acked.png next to this script.

usage: bench/uplink/run.py [--rate 16000] [--images 3] [--size 1000000]
       (run from the repository root after `swift build --build-tests`)
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def start_reading(cmd, marker):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    for line in p.stdout:
        if marker(line):
            return p, line
    raise RuntimeError(f"{cmd[0]} did not start")


def held_bytes(store):
    total = 0
    for root, _, files in os.walk(store):
        for f in files:
            if f.endswith(".part") or not (f.endswith(".json") or f.endswith(".tmp")):
                total += os.path.getsize(os.path.join(root, f))
    return total


def completed(store, name):
    return any(f.endswith("-" + name) for f in os.listdir(store))


def intact(store, files):
    """Every file is on the hub and every copy of it is byte-identical; a
    missing file is not intact. Returns (intact, copies per file, problems)."""
    names = os.listdir(store)
    copies, problems = {}, []
    for f in files:
        held = [n for n in names if n.endswith("-" + f.name)]
        copies[f.name] = len(held)
        if not held:
            problems.append(f"{f.name} is not on the hub")
        problems += [f"{n} differs from {f.name}" for n in held if (Path(store) / n).read_bytes() != f.read_bytes()]
    return not problems, copies, problems


def run_one(label, args, files, payload, work):
    store = work / f"store-{label}"
    store.mkdir()
    hub, line = start_reading([str(ROOT / ".build/debug/telestation-hub"), "--listen", "127.0.0.1:0", "--store", str(store)],
                              lambda l: "listening on" in l)
    hub_port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
    stats = work / f"proxy-{label}.json"
    proxy, line = start_reading([sys.executable, str(ROOT / "Tests/Support/impaired_proxy.py"), "--target", f"127.0.0.1:{hub_port}",
                                 "--stats", str(stats), "--rate", str(args.rate), "--latency", str(args.latency),
                                 "--reset-every", str(args.reset_every), "--outage-every", str(args.outage_every),
                                 "--outage-for", str(args.outage_for)], lambda l: l.startswith("READY"))
    proxy_started = time.monotonic()
    url = f"http://127.0.0.1:{line.split()[1]}/files/"
    timeline, preview_at, done = [], [None], threading.Event()
    start = time.monotonic()

    def poll():
        while not done.is_set():
            t = time.monotonic() - start
            timeline.append((t, held_bytes(store)))
            if preview_at[0] is None and completed(store, files[0].name):
                preview_at[0] = t
            time.sleep(0.25)

    poller = threading.Thread(target=poll)
    poller.start()
    if label == "station":
        env = dict(os.environ, TELESTATION_BENCH_URL=url, TELESTATION_BENCH_FILES=":".join(map(str, files)),
                   TELESTATION_BENCH_STALL=str(args.stall))
        subprocess.run(["swift", "test", "--skip-build", "--filter", "UplinkTests.BenchDriverTests"], env=env, check=True,
                       cwd=ROOT, stdout=subprocess.DEVNULL)
    else:
        subprocess.run([sys.executable, str(HERE / "tuspy_upload.py"), url] + list(map(str, files)), check=True)
    elapsed = time.monotonic() - start
    done.set()
    poller.join()
    timeline.append((elapsed, held_bytes(store)))
    proxy.terminate()
    proxy.wait()
    hub.terminate()
    hub.wait()
    s = json.loads(stats.read_text())
    # Clock starts at the client's first connection, so process start-up
    # (a Swift test runner vs a Python interpreter) does not count.
    t0 = proxy_started + (s["first_connection_s"] or 0) - start
    elapsed -= t0
    timeline = [(round(t - t0, 2), b) for t, b in timeline if t >= t0]
    if preview_at[0] is not None:
        preview_at[0] -= t0
    ok, copies, problems = intact(store, files)
    return {"elapsed_s": round(elapsed, 1), "first_preview_s": preview_at[0] and round(preview_at[0], 1),
            "upstream_bytes": s["upstream_bytes"], "overhead_pct": round((s["upstream_bytes"] - payload) / payload * 100, 1),
            "resets": s["resets"], "intact": ok, "copies": copies, "problems": problems, "timeline": timeline}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=float, default=16000)
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument("--reset-every", type=int, default=200_000)
    p.add_argument("--outage-every", type=float, default=40)
    p.add_argument("--outage-for", type=float, default=6)
    p.add_argument("--stall", type=float, default=10)
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--size", type=int, default=1_000_000)
    p.add_argument("--preview-size", type=int, default=30_000)
    p.add_argument("--clients", default="station,tuspy")
    args = p.parse_args()

    work = Path(tempfile.mkdtemp(prefix="uplink-bench-"))
    rnd = random.Random(42)
    files = [work / "case-preview.jpg"] + [work / f"case-image-{i}.jpg" for i in range(args.images)]
    files[0].write_bytes(rnd.randbytes(args.preview_size))
    for f in files[1:]:
        f.write_bytes(rnd.randbytes(args.size))
    payload = sum(f.stat().st_size for f in files)
    uptime = (args.outage_every - args.outage_for) / args.outage_every if args.outage_every > 0 else 1
    floor = payload / args.rate / uptime
    results = {"settings": vars(args), "payload_bytes": payload, "floor_s": round(floor, 1),
               "floor_preview_s": round(args.preview_size / args.rate / uptime, 1)}
    for label in args.clients.split(","):
        print(f"running {label}...", flush=True)
        r = run_one(label, args, files, payload, work)
        r["rate_vs_floor_pct"] = round(floor / r["elapsed_s"] * 100, 1)
        results[label] = r
        print(f"{label}: {r['elapsed_s']} s ({r['rate_vs_floor_pct']}% of the floor's rate), first preview "
              f"{r['first_preview_s']} s, upstream +{r['overhead_pct']}%, intact {r['intact']}", flush=True)
    print(f"floor: {results['floor_s']} s for {payload} B")
    (HERE / "results.json").write_text(json.dumps(results, indent=1))
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for label in args.clients.split(","):
            t = results[label]["timeline"]
            ax.plot([x for x, _ in t], [y / 1e6 for _, y in t], label=label)
        ax.plot([0, floor], [0, payload / 1e6], "--", label="floor (rate × uptime)")
        ax.set_xlabel("seconds")
        ax.set_ylabel("MB held by the hub")
        ax.set_title(f"{args.images} × {args.size // 1000} kB + preview at {args.rate * 8 / 1000:.0f} kbit/s, "
                     f"{args.latency * 1000:.0f} ms, reset every {args.reset_every // 1000} kB, "
                     f"{args.outage_for:.0f}/{args.outage_every:.0f} s outages", fontsize=9)
        ax.legend()
        fig.savefig(HERE / "acked.png", dpi=100, bbox_inches="tight")
    except ImportError:
        print("matplotlib missing: apt-get install python3-matplotlib for the plot", file=sys.stderr)
    shutil.rmtree(work)
    broken = {label: results[label]["problems"] for label in args.clients.split(",") if not results[label]["intact"]}
    if broken:
        sys.exit(f"not intact on the hub: {broken}")


if __name__ == "__main__":
    main()
