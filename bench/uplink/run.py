#!/usr/bin/env python3
"""The station's real uplink (`telestation enqueue` + `telestation sync`, the
upload path the daemon runs) vs tuspy vs the physical floor, on the same
impaired link, in paired runs, to two servers: `telestation-hub` (which
rebuilds JPEG XL recompressed uploads) and aiohttp-tus (an independent tus
server from PyPI that offers only `creation` and discards a cut PATCH).

Each run: a fresh server and a fresh impaired proxy (Tests/Support/
impaired_proxy.py, identical settings), then the client; the station with a
fresh state directory and the image enqueued before the clock starts (enqueue
makes the preview), tuspy with the same two files (the station's preview, as
the hub stored it, and the image). Clients alternate which goes first from
run to run. Times run from the client's first connection through the proxy.
The floor is (preview + image bytes) ÷ rate ÷ uptime fraction. The image is
camera-like: the capture bench's photo-like frame (bench/capture/make_frame.py)
at 2368×1332, encoded by cjpeg at quality 92 with 4:2:2 sampling (as a UVC
camera's YUYV becomes): 1,025,765 bytes.

Writes results.json next to this script (or --results), with the commit.

The `daemon` client (`--clients daemon,...`) is the same station as a
service: the image is enqueued the same way, then `telestation run` (with
the synthetic camera and the kiosk on loopback) uploads it from its own
loop; it has delivered when the server holds the image and its preview
(polled every 0.1 s), and is then stopped. It also sends its health reports,
as a station does; they count in its upstream bytes but not in the payload.

usage: bench/uplink/run.py [--runs 5] [--servers hub,aiohttp-tus,hub-plain] [--clients station,daemon,tuspy]
       (hub-plain: telestation-hub with the station's recompression off, a
       tus server that keeps partial PATCH bodies)
       (from the repository root after `make build`; `make bench-uplink` installs tuspy)
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SUPPORT = ROOT / "Tests/Support"


def start_reading(cmd, marker, **kw):
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, **kw)
    for line in p.stdout:
        if marker(line):
            # Keep draining so a chatty server never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return p, line
    raise RuntimeError(f"{cmd[0]} did not start")


def camera_jpeg(path, width, height):
    """The capture bench's photo-like frame (bench/capture/make_frame.py:
    shaded skin, a textured lesion with a sharp edge, sensor-like noise) as
    a 4:2:2 q92 JPEG, as a UVC camera's YUYV becomes."""
    ppm = path.with_suffix(".ppm")
    subprocess.run([sys.executable, str(ROOT / "bench/capture/make_frame.py"), str(width), str(height), str(ppm)], check=True)
    with open(path, "wb") as out:
        subprocess.run(["cjpeg", "-quality", "92", "-sample", "2x1", str(ppm)], stdout=out, check=True)
    ppm.unlink()


def stored_copies(store, name, kind="hub"):
    """The complete stored copies of a file sent as `name`: telestation-hub
    keeps ID-NAME, aiohttp-tus NAME once its metadata file is written."""
    store = Path(store)
    if kind in ("hub", "hub-plain"):
        return [store / n for n in os.listdir(store) if n.endswith("-" + name)]
    p = store / name
    return [p] if (store / (name + ".metadata.json")).exists() else []


def intact(store, files, kind="hub"):
    """Every file is on the server exactly once and byte-identical; a missing
    file is not intact. Returns (intact, copies per file, problems)."""
    copies, problems = {}, []
    for f in files:
        held = stored_copies(store, f.name, kind)
        copies[f.name] = len(held)
        if not held:
            problems.append(f"{f.name} is not on the hub")
        elif len(held) > 1:
            problems.append(f"{f.name}: {len(held)} copies on the hub")
        problems += [f"{p.name} differs from {f.name}" for p in held if p.read_bytes() != f.read_bytes()]
    return not problems, copies, problems


class Server:
    def __init__(self, kind, store, bin_dir):
        self.kind, self.store = kind, store
        store.mkdir(parents=True)
        # hub-plain: the same hub with the station's recompression off, i.e.
        # a tus server that keeps partial PATCH bodies and rebuilds nothing.
        if kind in ("hub", "hub-plain"):
            self.proc, line = start_reading([str(bin_dir / "telestation-hub"), "--listen", "127.0.0.1:0", "--store", str(store)],
                                            lambda l: "listening on" in l)
            self.port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
            self.path = "/files/"
        else:
            self.proc, line = start_reading([sys.executable, str(SUPPORT / "aiohttp_tus_server.py"), str(store)],
                                            lambda l: l.startswith("READY"))
            self.port = int(line.split()[1])
            self.path = "/uploads"

    def stored(self, name):
        return stored_copies(self.store, name, self.kind)

    def held_bytes(self):
        total = 0
        for root, _, files in os.walk(self.store):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files if not f.endswith((".json", ".tmp")))
        return total

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def station_config(path, state, url, args, recompress, kiosk=False):
    key = path.parent / "spool.key"
    if not key.exists():
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
    path.write_text(f"""[station]
id = "ps-bench"
state_dir = "{state}"
[hub]
url = "{url}"
[camera]
device = "synthetic"
[uplink]
stall_timeout = "{args.stall}s"
backoff_max = "30s"
recompress = {"true" if recompress else "false"}
[spool]
min_free = "10MiB"
key_file = "{key}"
""" + (f"""[kiosk]
listen = "127.0.0.1:{free_port()}"
""" if kiosk else ""))


def run_one(client, server_kind, args, image, preview, work, tag):
    server = Server(server_kind, work / f"store-{tag}", args.bin)
    stats = work / f"proxy-{tag}.json"
    proxy, line = start_reading([sys.executable, str(SUPPORT / "impaired_proxy.py"), "--target", f"127.0.0.1:{server.port}",
                                 "--stats", str(stats), "--rate", str(args.rate), "--latency", str(args.latency),
                                 "--reset-every", str(args.reset_every), "--outage-every", str(args.outage_every),
                                 "--outage-for", str(args.outage_for)], lambda l: l.startswith("READY"))
    proxy_started = time.monotonic()
    url = f"http://127.0.0.1:{line.split()[1]}{server.path}"
    preview_name = image.stem + "-preview.jpg"
    if client in ("station", "daemon"):
        config, state = work / f"station-{tag}.toml", work / f"state-{tag}"
        station_config(config, state, url, args, args.recompress and server_kind != "hub-plain", kiosk=client == "daemon")
        subprocess.run([str(args.bin / "telestation"), "enqueue", "--quiet", "--config", str(config), "--case", "40000001",
                        "--site", "arm_left", str(image)], check=True, stdout=subprocess.DEVNULL)
        if client == "station":
            cmd = [str(args.bin / "telestation"), "sync", "--config", str(config)]
        else:
            cmd = [str(args.bin / "telestation"), "run", "--config", str(config)]
        log = open(work / f"{'sync' if client == 'station' else 'daemon'}-{tag}.log", "w")
    else:
        cmd = [sys.executable, str(HERE / "tuspy_upload.py"), url, str(preview), str(image)]
        log = open(work / f"tuspy-{tag}.log", "w")
    timeline, preview_at, done = [], [None], threading.Event()
    start = time.monotonic()

    def poll():
        while not done.is_set():
            t = time.monotonic() - start
            timeline.append((t, server.held_bytes()))
            if preview_at[0] is None and server.stored(preview_name):
                preview_at[0] = t
            time.sleep(0.25)

    poller = threading.Thread(target=poll)
    poller.start()
    if client == "daemon":
        # The daemon never exits by itself: it has delivered when the server
        # holds the image and its preview (telestation-hub stores a file only
        # once it is whole and checked), polled every 0.1 s.
        daemon = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        rc = None
        while time.monotonic() - start < args.timeout:
            if daemon.poll() is not None:
                rc = daemon.returncode if daemon.returncode != 0 else -1
                break
            if server.stored(image.name) and server.stored(preview_name):
                rc = 0
                break
            time.sleep(0.1)
        elapsed = time.monotonic() - start
        if daemon.poll() is None:
            daemon.terminate()
            try:
                daemon.wait(timeout=30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    else:
        try:
            rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = None
        elapsed = time.monotonic() - start
    done.set()
    poller.join()
    log.close()
    proxy.terminate()
    proxy.wait()
    s = json.loads(stats.read_text())
    t0 = proxy_started + (s["first_connection_s"] or 0) - start
    if rc is None:
        problems = [f"{client} had not delivered after {args.timeout:.0f} s and was stopped"]
    else:
        problems = [] if rc == 0 else [f"{client} exited {rc} (log {log.name})"]
    # The daemon also sends its health reports to the hub; they are not payload.
    ok, copies, found = intact(server.store, [f for f in (image, preview) if f is not None], server.kind)
    problems += found
    station_preview = None
    if client == "station" and server_kind == "hub" and server.stored(preview_name):
        station_preview = server.stored(preview_name)[0].read_bytes()
    server.stop()
    return {
        "delivered": rc == 0,
        "elapsed_s": round(elapsed - t0, 1) if rc == 0 else None,
        "first_preview_s": preview_at[0] and round(preview_at[0] - t0, 1),
        "upstream_bytes": s["upstream_bytes"], "resets": s["resets"],
        "intact": not problems, "problems": problems, "copies": copies,
        "timeline": [(round(t - t0, 2), b) for t, b in timeline if t >= t0][::4],
    }, station_preview


def summary(runs, floor, payload):
    """Medians over the runs; a run that did not deliver counts as slower
    than any that did (its time is the timeout), and is counted apart."""
    el = sorted(r["elapsed_s"] if r["delivered"] else math.inf for r in runs)
    up = [r["upstream_bytes"] / payload for r in runs]
    pv = [r["first_preview_s"] for r in runs if r["first_preview_s"] is not None]
    med = statistics.median(el)
    def pct(t):
        return round(floor / t * 100, 1) if math.isfinite(t) else 0.0
    return {"runs": len(runs), "delivered": sum(r["delivered"] for r in runs),
            "median_s": med if math.isfinite(med) else None, "min_s": el[0] if math.isfinite(el[0]) else None,
            "max_s": el[-1] if math.isfinite(el[-1]) else None,
            "median_rate_vs_floor_pct": pct(med), "rate_vs_floor_pct_range": [pct(el[-1]), pct(el[0])],
            "median_upstream_per_payload_byte": round(statistics.median(up), 3),
            "median_first_preview_s": statistics.median(pv) if pv else None,
            "all_intact": all(r["intact"] for r in runs)}


def commit():
    try:
        c = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=7", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no", "--", "Sources"],
                               capture_output=True, text=True).stdout.strip()
        return c + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", type=Path, default=ROOT / ".build/debug", help="directory with telestation and telestation-hub")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--servers", default="hub,aiohttp-tus")
    p.add_argument("--clients", default="station,tuspy")
    p.add_argument("--rate", type=float, default=16000, help="bytes/s shared by both directions (16000 = 128 kbit/s)")
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument("--reset-every", type=int, default=200_000)
    p.add_argument("--outage-every", type=float, default=40)
    p.add_argument("--outage-for", type=float, default=6)
    p.add_argument("--stall", type=int, default=10)
    p.add_argument("--width", type=int, default=2368)
    p.add_argument("--height", type=int, default=1332)
    p.add_argument("--no-recompress", dest="recompress", action="store_false")
    p.add_argument("--timeout", type=float, default=240, help="a client that has not delivered by then is stopped and counted as not delivering")
    p.add_argument("--results", type=Path, default=HERE / "results.json")
    args = p.parse_args()
    args.bin = args.bin.resolve()

    work = Path(tempfile.mkdtemp(prefix="uplink-bench-"))
    image = work / "lesion.jpg"
    camera_jpeg(image, args.width, args.height)
    servers, clients = args.servers.split(","), args.clients.split(",")
    # The station's preview, as the hub stores it, is what tuspy sends too.
    first, preview_bytes = run_one("station", "hub", args, image, None, work, "warmup")
    if preview_bytes is None:
        sys.exit(f"the warm-up run stored no preview: {first['problems']}")
    preview = work / (image.stem + "-preview.jpg")
    preview.write_bytes(preview_bytes)
    payload = image.stat().st_size + preview.stat().st_size
    uptime = (args.outage_every - args.outage_for) / args.outage_every if args.outage_every > 0 else 1
    floor = payload / args.rate / uptime
    results = {"commit": commit(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "image_bytes": image.stat().st_size, "preview_bytes": preview.stat().st_size, "payload_bytes": payload,
               "floor_s": round(floor, 1), "floor_preview_s": round(preview.stat().st_size / args.rate / uptime, 1),
               "runs": {}}
    print(f"payload {payload} B (image {image.stat().st_size}, preview {preview.stat().st_size}), floor {floor:.1f} s", flush=True)
    for i in range(args.runs):
        for server in servers:
            order = clients if i % 2 == 0 else list(reversed(clients))
            for client in order:
                r, _ = run_one(client, server, args, image, preview, work, f"{server}-{client}-{i}")
                results["runs"].setdefault(f"{server}/{client}", []).append(r)
                rate = f"{floor / r['elapsed_s'] * 100:.1f} %" if r["delivered"] else "not delivered"
                print(f"run {i + 1}/{args.runs} {server}/{client}: {r['elapsed_s']} s ({rate} of the floor's rate), "
                      f"first preview {r['first_preview_s']} s, upstream {r['upstream_bytes'] / payload:.3f} B/B, "
                      f"resets {r['resets']}, intact {r['intact']} {r['problems'] or ''}", flush=True)
    results["summary"] = {k: summary(v, floor, payload) for k, v in results["runs"].items()}
    for server in servers:
        for ours in ("station", "daemon"):
            if all(f"{server}/{c}" in results["runs"] for c in (ours, "tuspy")):
                pairs = zip(results["runs"][f"{server}/{ours}"], results["runs"][f"{server}/tuspy"])
                results["summary"][f"{server}/{ours}"]["paired_wins_vs_tuspy"] = sum(
                    a["delivered"] and (not b["delivered"] or a["elapsed_s"] < b["elapsed_s"]) for a, b in pairs)
    args.results.write_text(json.dumps(results, indent=1))
    for k, v in results["summary"].items():
        print(f"{k}: median {v['median_s']} s ({v['median_rate_vs_floor_pct']} % of the floor's rate, range {v['rate_vs_floor_pct_range']}), "
              f"upstream {v['median_upstream_per_payload_byte']} B per payload byte, first preview {v['median_first_preview_s']} s, "
              f"intact {v['all_intact']}" + (f", faster than tuspy in {v['paired_wins_vs_tuspy']} of {v['runs']} pairs" if "paired_wins_vs_tuspy" in v else ""))
    shutil.rmtree(work)
    # A client that never delivers is a result; a copy that differs, a
    # duplicate, or the station not delivering is a failure of the run.
    broken = {k: [r["problems"] for r in v if r["problems"] and (r["delivered"] or k.endswith(("/station", "/daemon")))]
              for k, v in results["runs"].items()}
    broken = {k: v for k, v in broken.items() if v}
    if broken:
        sys.exit(f"not intact: {broken}")


if __name__ == "__main__":
    main()
