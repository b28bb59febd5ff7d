"""Shared pieces of the station campaigns: the real hub, a station
configuration, test JPEGs, and the end-of-campaign checks (the hub holds each
accepted image exactly once and byte-identical; the spool passes its checks).

Nothing here imitates the station: the campaigns drive the built binaries
(`telestation`, `telestation-hub`) as processes.
"""
import hashlib
import json
import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time

# Every byte on the hub: `uploaded` (a hub without receipts, or a receipt
# still to come) or `received` (the hub confirmed filing).
DELIVERED = ("uploaded", "received")


def log(*parts):
    print(*parts, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def reusable_port():
    """A free loopback port below the kernel's ephemeral range, for a server
    that stops and must come back on the same port: a port from the ephemeral
    range can meanwhile become the source port of some outgoing connection."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, min(low, 30000))
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    raise SystemExit("no free loopback port between 20000 and the ephemeral range")


class LineReader:
    """Collects a child's output lines on a thread; `wait_for` a pattern."""

    def __init__(self, stream, sink=None):
        self.lines = []
        self.cond = threading.Condition()
        self.sink = sink
        self.listeners = []
        t = threading.Thread(target=self._run, args=(stream,), daemon=True)
        t.start()

    def _run(self, stream):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if self.sink:
                self.sink.write(line + "\n")
            for listener in list(self.listeners):
                listener(line)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def wait_for(self, pattern, timeout):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self.cond:
            while True:
                while seen < len(self.lines):
                    line = self.lines[seen]
                    seen += 1
                    if line is None:
                        return None
                    m = rx.search(line)
                    if m:
                        return m
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


class Hub:
    """The real telestation-hub on a free loopback port."""

    def __init__(self, bin_dir, store, log_path, token_file=None, port=0):
        os.makedirs(store, exist_ok=True)
        self.store = store
        args = [os.path.join(bin_dir, "telestation-hub"), "--listen", f"127.0.0.1:{port}", "--store", store]
        if token_file:
            args += ["--token-file", token_file]
        self.log_file = open(log_path, "a")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = LineReader(self.proc.stdout, self.log_file)
        self.err = LineReader(self.proc.stderr, self.log_file)
        m = self.out.wait_for(r"listening on http://127\.0\.0\.1:(\d+)(/\S*),", 60)
        if not m:
            self.stop()
            raise SystemExit("telestation-hub did not start; see " + log_path)
        self.port = int(m.group(1))
        self.url = f"http://127.0.0.1:{self.port}{m.group(2)}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


class Daemon:
    """One life of `telestation run`, from its start to a kill or SIGTERM."""

    def __init__(self, bin_dir, config, log_file):
        self.proc = subprocess.Popen([os.path.join(bin_dir, "telestation"), "run", "--config", config],
                                     stdout=subprocess.PIPE, stderr=log_file)
        self.out = LineReader(self.proc.stdout, log_file)
        m = self.out.wait_for(r"listening (http://\S+)/", 90)
        if not m:
            kill_hard(self.proc)
            raise SystemExit("telestation run did not start listening; see the daemon log")
        self.api = m.group(1)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            kill_hard(self.proc)


def write_config(path, state_dir, hub_url, kiosk_port, *, max_rate="unlimited", token_file=None,
                 backoff_max="2s", stall_timeout="10s", width=640, height=480, extra="", station_id="ps-campaign"):
    token = f'token_file = "{token_file}"\n' if token_file else ""
    # The spool key, 32 bytes and 0600, as the package creates it.
    key = os.path.join(os.path.dirname(os.path.abspath(path)), "spool.key")
    if not os.path.exists(key):
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
    with open(path, "w") as f:
        f.write(f"""[station]
id = "{station_id}"
state_dir = "{state_dir}"
[hub]
url = "{hub_url}"
{token}[camera]
device = "synthetic"
width = {width}
height = {height}
warmup_frames = 0
[uplink]
max_rate = "{max_rate}"
min_chunk = "8KiB"
max_chunk = "256KiB"
backoff_max = "{backoff_max}"
stall_timeout = "{stall_timeout}"
[kiosk]
listen = "127.0.0.1:{kiosk_port}"
[spool]
min_free = "10MiB"
key_file = "{key}"
{extra}""")


def make_jpegs(directory, count, rng, min_side=120, max_side=700):
    """JPEG files of varied size made by cjpeg from random-ish pixels.
    Returns [(path, sha256)]."""
    os.makedirs(directory, exist_ok=True)
    out = []
    for i in range(count):
        w = rng.randint(min_side, max_side)
        h = rng.randint(min_side, max_side)
        noise = rng.random()
        pixels = bytearray()
        base = [rng.randrange(256) for _ in range(3)]
        for y in range(h):
            row = bytearray()
            for x in range(w):
                if rng.random() < noise:
                    row += bytes((rng.randrange(256), rng.randrange(256), rng.randrange(256)))
                else:
                    row += bytes(((base[0] + x) & 255, (base[1] + y) & 255, (base[2] + x + y) & 255))
            pixels += row
        ppm = os.path.join(directory, f"img{i:03d}.ppm")
        with open(ppm, "wb") as f:
            f.write(b"P6\n%d %d\n255\n" % (w, h) + bytes(pixels))
        jpg = os.path.join(directory, f"img{i:03d}.jpg")
        subprocess.run(["cjpeg", "-quality", "92", "-outfile", jpg, ppm], check=True)
        os.remove(ppm)
        out.append((jpg, sha256_file(jpg)))
    return out


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hub_files(store):
    """Every completed upload in the hub's store: its metadata and the hash of its bytes."""
    out = []
    for name in sorted(os.listdir(store)):
        if not name.endswith(".json") or name.startswith("."):
            continue
        data_path = os.path.join(store, name[:-5])
        # Records only: fleet.json is the hub's fleet view, and an upload
        # whose own name ends in .json (a health report) has no file beside it.
        if name == "fleet.json" or not os.path.isfile(data_path):
            continue
        with open(os.path.join(store, name)) as f:
            info = json.load(f)
        out.append({"id": info["id"], "metadata": info.get("metadata", {}), "declared": info.get("metadata", {}).get("sha256"),
                    "actual": sha256_file(data_path), "size": os.path.getsize(data_path)})
    return out


def spool_rows(state_dir):
    db = sqlite3.connect(os.path.join(state_dir, "queue.sqlite"))
    db.row_factory = sqlite3.Row
    rows = [dict(r) for r in db.execute("SELECT * FROM item ORDER BY id")]
    integrity = [r[0] for r in db.execute("PRAGMA integrity_check")]
    db.close()
    return rows, integrity


def check_spool(bin_dir, config_path, state_dir, problems):
    """The station's own check (`diagnose --only storage`: integrity_check and
    files against rows) and an independent look at the same tables."""
    r = subprocess.run([os.path.join(bin_dir, "telestation"), "diagnose", "--config", config_path,
                        "--only", "storage", "--json"], capture_output=True, text=True, timeout=120)
    try:
        report = json.loads(r.stdout)
    except json.JSONDecodeError:
        problems.append(f"diagnose --only storage printed no JSON: {r.stdout[:300]} {r.stderr[:300]}")
        report = {}
    queue = [c for c in report.get("checks", report.get("results", [])) if c.get("check") == "storage.queue"]
    if not queue or queue[0].get("status", "").upper() not in ("PASS", "WARN") or "agree" not in queue[0].get("finding", ""):
        # The first storage.queue result is the integrity verdict.
        problems.append(f"spool integrity check did not pass: {queue[:1] or report}")
    rows, integrity = spool_rows(state_dir)
    if integrity != ["ok"]:
        problems.append(f"PRAGMA integrity_check: {integrity}")
    spool = os.path.join(state_dir, "spool")
    present = {n for n in os.listdir(spool) if not n.startswith(".")}
    expected = set()
    for row in rows:
        if row["file_deleted_at"] is not None:
            continue
        expected.add(row["file"])
        path = os.path.join(spool, row["file"])
        if not os.path.exists(path):
            problems.append(f"item {row['id']}: file {row['file']} missing")
        else:
            # Stored encrypted (the hub's copies are checked byte for byte
            # against the accepted images in check_delivery).
            with open(path, "rb") as f:
                if f.read(5) != b"TSENC":
                    problems.append(f"item {row['id']}: file {row['file']} is not encrypted at rest")
    unknown = present - expected
    if unknown:
        problems.append(f"files in the spool without a row: {sorted(unknown)[:5]}")
    return rows


def check_delivery(store, rows, accepted, unacknowledged, problems):
    """The hub holds every uploaded spool item exactly once, byte-identical,
    and nothing else; every accepted image (and its preview) was uploaded.

    accepted: [(case, sha256 of the full image, preview sha256 or None)]
    unacknowledged: same shape, for requests whose answer a kill cut off
    (each may or may not have been queued).
    """
    # The station's own health reports (a daemon sends one a minute after
    # start) are not images; the fleet campaign checks them.
    files = [f for f in hub_files(store) if f["metadata"].get("kind") != "health"]
    counts = {}
    for f in files:
        if f["declared"] != f["actual"]:
            problems.append(f"hub upload {f['id']}: bytes hash to {f['actual']}, the station declared {f['declared']}")
        key = (f["metadata"].get("case"), f["metadata"].get("kind"), f["actual"])
        counts[key] = counts.get(key, 0) + 1
    for key, n in counts.items():
        if n > 1:
            problems.append(f"hub holds {n} copies of {key}")
    by_key = {}
    for row in rows:
        by_key[(row["case_id"], row["kind"], row["sha256"])] = row
    accepted_keys = set()
    for case, sha, preview in accepted:
        accepted_keys.add((case, "image", sha))
        row = by_key.get((case, "image", sha))
        if row is None:
            problems.append(f"accepted image {sha[:12]} of case {case} is not in the spool")
            continue
        if row["state"] not in DELIVERED:
            problems.append(f"accepted image {row['id']} is {row['state']}, not uploaded: {row['last_error']}")
        if (case, "image", sha) not in counts:
            problems.append(f"accepted image {row['id']} ({sha[:12]}, case {case}) is not on the hub")
        previews = [r for r in rows if r["parent_id"] == row["id"]]
        if not previews:
            problems.append(f"accepted image {row['id']} has no preview in the spool")
        for p in previews:
            accepted_keys.add((case, "preview", p["sha256"]))
            if preview is not None and p["sha256"] != preview:
                problems.append(f"preview of item {row['id']} is not the one the station showed")
            if p["state"] not in DELIVERED or (case, "preview", p["sha256"]) not in counts:
                problems.append(f"preview {p['id']} of accepted image {row['id']} is {p['state']} / not on the hub")
    maybe = set()
    for case, sha, _ in unacknowledged:
        row = by_key.get((case, "image", sha))
        maybe.add((case, "image", sha))
        if row is not None:
            maybe.update((case, "preview", r["sha256"]) for r in rows if r["parent_id"] == row["id"])
            if row["state"] not in DELIVERED:
                problems.append(f"item {row['id']} (queued before a kill cut off its answer) is {row['state']}")
    for key in counts:
        if key not in accepted_keys and key not in maybe:
            problems.append(f"hub holds an upload nobody accepted: {key}")
    return files


def source_commit():
    """The checkout's HEAD and whether Sources/ or Tests/ differ from it: the
    figures name the code they came from, written by the run itself."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "diff", "--quiet", "HEAD", "--", "Sources", "Tests"]).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True
    return head, dirty


def write_results(path, figures):
    """Writes the figures with the commit they ran on. A campaign that knows
    which checkout its binaries came from (`commit` in `figures`, e.g.
    vm_power_cut.py --source) keeps it: the working tree may have moved on
    during a long run."""
    if "commit" in figures:
        commit, dirty = figures["commit"], figures.get("commit_dirty")
    else:
        commit, dirty = source_commit()
    figures = dict(figures, commit=commit, commit_dirty=dirty)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(figures, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def kill_hard(proc):
    """SIGKILL, as a power cut would, and reap."""
    if proc is not None and proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    if proc is not None:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            pass


def report(figures, results_path, problems, work):
    """Prints and records the figures; on problems names the work directory
    kept for inspection and exits 1."""
    log(json.dumps(figures, indent=2, sort_keys=True))
    if results_path:
        write_results(results_path, figures)
    if problems:
        log(f"work directory kept: {work}")
        fail(problems)


def fail(problems):
    for p in problems[:40]:
        log("PROBLEM:", p)
    if len(problems) > 40:
        log(f"... and {len(problems) - 40} more")
    sys.exit(1)
