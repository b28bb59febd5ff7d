#!/usr/bin/env python3
"""Power-cut campaign: the whole station against a real hub.

Runs the built `telestation run` (synthetic camera, control API on loopback)
and `telestation enqueue` against the built `telestation-hub`, and while
captures are taken and accepted, files enqueued and images uploaded through a
rate cap, SIGKILLs the daemon (and any enqueue in progress, as a power cut
would) at random moments: some at a random time, some the instant the hub
reports an upload complete (the moment a station that has not yet recorded
the answer would send the image again). After each kill the daemon is
restarted. At the end everything drains and the campaign checks that the hub
holds exactly the accepted images and their previews, once each,
byte-identical to what the station accepted, and that the spool passes
`PRAGMA integrity_check` and agrees with its files.

usage: power_cut.py --bin .build/debug --kills 200 [--seed N] [--results FILE]
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request

from campaign import (Daemon, Hub, check_delivery, check_spool, fail, free_port, kill_hard, log, make_jpegs,
                      report, spool_rows, write_config)


def request(method, url, body=None, timeout=30):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


class Actor:
    """Captures and enqueues until told to stop; records what was acknowledged."""

    def __init__(self, campaign, station):
        self.c = campaign
        self.station = station
        self.stopping = False
        self.lock = threading.Lock()
        self.enqueue_proc = None
        self.in_capture = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop_and_kill(self):
        """The power cut: the daemon and any enqueue in progress die together."""
        with self.lock:
            self.stopping = True
            victims = [self.station.proc, self.enqueue_proc]
            during_enqueue = self.enqueue_proc is not None and self.enqueue_proc.poll() is None
            during_capture = self.in_capture
        for p in victims:
            if p is not None and p.poll() is None:
                try:
                    p.kill()
                except ProcessLookupError:
                    pass
        for p in victims:
            kill_hard(p)
        self.thread.join(60)
        return during_enqueue, during_capture

    def run(self):
        rng = self.c.rng_actions
        while True:
            with self.lock:
                if self.stopping:
                    return
            try:
                if rng.random() < 0.55:
                    self.capture()
                else:
                    self.enqueue(rng)
            except Exception as e:  # the kill cut the action short
                with self.lock:
                    if self.stopping:
                        return
                log("action failed without a kill:", repr(e))
                self.c.problems.append(f"an action failed while the station ran: {e!r}")
                return
            time.sleep(rng.uniform(0, 0.3))

    def capture(self):
        case = self.c.next_case()
        api = self.station.api
        with self.lock:
            self.in_capture = True
        try:
            status, body = request("POST", f"{api}/api/v1/captures", {"case_id": case, "site": "arm_left", "note": "campaign"})
            review = json.loads(body)
            rid = review["id"]
            _, image = request("GET", f"{api}/api/v1/captures/{rid}/image")
            _, preview = request("GET", f"{api}/api/v1/captures/{rid}/preview")
            entry = (case, hashlib.sha256(image).hexdigest(), hashlib.sha256(preview).hexdigest())
            self.c.sent_unanswered.append(entry)
            status, _ = request("POST", f"{api}/api/v1/captures/{rid}/accept")
            self.c.sent_unanswered.remove(entry)
            if status != 200:
                self.c.problems.append(f"accept of capture {rid} answered {status}")
                return
            self.c.accepted.append(entry)
            self.c.bytes_accepted += len(image) + len(preview)
            self.c.captures += 1
        except Exception:
            with self.lock:
                if not self.stopping:
                    raise
            # Killed: an accept sent but not answered stays in sent_unanswered.
        finally:
            with self.lock:
                self.in_capture = False

    def enqueue(self, rng):
        path, sha = rng.choice(self.c.images)
        case = self.c.next_case()
        entry = (case, sha, None)
        with self.lock:
            if self.stopping:
                return
            self.enqueue_proc = subprocess.Popen(
                [os.path.join(self.c.bin, "telestation"), "enqueue", "--config", self.c.config, "--case", case, path],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            proc = self.enqueue_proc
        out, err = proc.communicate()
        with self.lock:
            self.enqueue_proc = None
            killed = self.stopping and proc.returncode < 0
        if proc.returncode == 0 and b"queued as item" in out:
            self.c.accepted.append(entry)
            self.c.bytes_accepted += os.path.getsize(path)
            self.c.enqueues += 1
        elif killed:
            self.c.sent_unanswered.append(entry)
        else:
            self.c.problems.append(f"enqueue failed without a kill ({proc.returncode}): {out!r} {err!r}")


class Campaign:
    def __init__(self, a):
        self.bin = a.bin
        self.seed = a.seed
        self.rng = random.Random(a.seed)
        self.rng_actions = random.Random(a.seed + 1)
        self.accepted = []
        self.sent_unanswered = []
        self.problems = []
        self.case_counter = 0
        self.captures = 0
        self.enqueues = 0
        self.bytes_accepted = 0

    def next_case(self):
        self.case_counter += 1
        return f"{40000000 + self.seed % 1000 * 10000 + self.case_counter}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=".build/debug")
    p.add_argument("--kills", type=int, default=200)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--results", default=None)
    p.add_argument("--rate", default="384KiB/s", help="uplink.max_rate: keeps uploads in flight when the kills come")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    log(f"power-cut campaign: seed {a.seed}, {a.kills} kills (rerun with --seed {a.seed})")
    c = Campaign(a)
    work = tempfile.mkdtemp(prefix="telestation-powercut.")
    started = time.monotonic()
    state_dir = os.path.join(work, "state")
    store = os.path.join(work, "hub")
    daemon_log = open(os.path.join(work, "daemon.log"), "a")
    hub = Hub(a.bin, store, os.path.join(work, "hub.log"))
    c.config = os.path.join(work, "station.toml")
    write_config(c.config, state_dir, hub.url, free_port(), max_rate=a.rate)
    c.images = make_jpegs(os.path.join(work, "src"), 16, random.Random(a.seed + 2))

    completions = threading.Semaphore(0)
    hub.err.listeners.append(lambda line: completions.release() if "upload complete" in line else None)

    kills = {"total": 0, "at_hub_completion": 0, "random_time": 0, "upload_in_flight": 0,
             "during_enqueue": 0, "during_capture": 0}
    try:
        while kills["total"] < a.kills:
            station = Daemon(a.bin, c.config, daemon_log)
            actor = Actor(c, station)
            if c.rng.random() < 0.3:
                # Drain stale signals, then cut power the moment the hub completes an upload.
                while completions.acquire(blocking=False):
                    pass
                if completions.acquire(timeout=c.rng.uniform(0.5, 2.0)):
                    kills["at_hub_completion"] += 1
                else:
                    kills["random_time"] += 1
            else:
                time.sleep(c.rng.uniform(0.05, 1.0))
                kills["random_time"] += 1
                try:
                    _, body = request("GET", f"{station.api}/api/v1/link", timeout=0.5)
                    if json.loads(body).get("uploading"):
                        kills["upload_in_flight"] += 1
                except Exception:
                    pass
            during_enqueue, during_capture = actor.stop_and_kill()
            kills["total"] += 1
            kills["during_enqueue"] += during_enqueue
            kills["during_capture"] += during_capture
            if c.problems:
                fail(c.problems)
            if kills["total"] % 25 == 0:
                log(f"  {kills['total']} kills, {len(c.accepted)} images accepted, "
                    f"{int(time.monotonic() - started)} s")

        # Power stays on: everything drains.
        log("draining ...")
        station = Daemon(a.bin, c.config, daemon_log)
        deadline = time.monotonic() + 300 + 0.2 * a.kills
        while time.monotonic() < deadline:
            rows, _ = spool_rows(state_dir)
            if all(r["state"] in ("uploaded", "received", "held") for r in rows):
                break
            time.sleep(1)
        station.stop()
        daemon_log.flush()

        rows = check_spool(a.bin, c.config, state_dir, c.problems)
        held = [r for r in rows if r["state"] == "held"]
        for r in held:
            if r["case_id"] != "":
                c.problems.append(f"item {r['id']} of case {r['case_id']} is held: {r['last_error']}")
        files = check_delivery(store, rows, c.accepted, c.sent_unanswered, c.problems)
        # The moments the campaign is about must have been hit: otherwise it
        # passes having tested less than it says.
        for moment in ("at_hub_completion", "upload_in_flight", "during_enqueue", "during_capture"):
            if kills[moment] == 0:
                c.problems.append(f"no kill {moment.replace('_', ' ')} in {kills['total']} kills: that moment was not tested")
        if not c.accepted:
            c.problems.append("no image was accepted: there was nothing to lose")
        duration = time.monotonic() - started
        figures = {
            "campaign": "power-cut", "seed": a.seed, "kills": kills, "duration_s": round(duration, 1),
            "images_accepted": len(c.accepted), "captures_accepted": c.captures, "files_enqueued": c.enqueues,
            "answers_cut_off_by_a_kill": len(c.sent_unanswered),
            "bytes_accepted": c.bytes_accepted,
            "hub_uploads": len(files), "hub_bytes": sum(f["size"] for f in files),
            "spool_items": len(rows), "adopted_after_interrupted_enqueue": len(held),
            "problems": len(c.problems), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        a.keep = a.keep or bool(c.problems)
        report(figures, a.results, c.problems, work)
        log(f"power-cut campaign passed: {kills['total']} kills, {len(c.accepted)} images, "
            f"{len(files)} hub uploads, {duration:.0f} s (seed {a.seed})")
    finally:
        for stop in (hub.stop, daemon_log.close) + (() if a.keep else (lambda: shutil.rmtree(work, ignore_errors=True),)):
            stop()


if __name__ == "__main__":
    main()
