#!/usr/bin/env python3
"""Hub-fault campaign: the real daemon against the real hub behind a fault
injector (fault_proxy.py).

1. Outage: every request is answered 503 for a while. The number of requests
   the station makes must stay within what the backoff policy allows for that
   time (full jitter, base 1 s, cap uplink.backoff_max), not one per queued item.
2. Faults: each error class (409, 404/410, 412/415, 413, 401/403, 423, 429 and
   503 with Retry-After, 502, tusd's 500 lock timeout), resets in the middle of
   a body, stalls and responses cut off in their headers, on a seeded schedule.
   A Retry-After must be honoured: no request before it has passed.
3. Recovery: the hub answers normally. Everything not held is delivered; the
   items refused with 412/415/413 show as held with the reason in
   `telestation status --json`, and after the operator's `telestation release
   --all-held` they are delivered too.
4. Token: with a wrong token the real hub answers 401: the items show as failed
   with the credentials reason; the operator replaces the token file and
   restarts the daemon, and they are delivered.
At the end the hub holds every queued image and preview exactly once,
byte-identical, and nothing else.

usage: hub_faults.py --bin .build/debug [--seed N] [--fault-seconds 25] [--results FILE]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import tempfile
import time

from campaign import (Daemon, Hub, check_delivery, check_spool, free_port, log, make_jpegs,
                      report, spool_rows, write_config)
from fault_proxy import ALL_CLASSES, AUTH_CLASSES, HOLD_CLASSES, STATUS_FAULTS, FaultProxy, applies

# uplink.backoff_max: caps the station's waits, Retry-After included, so it
# must be above the Retry-After values fault_proxy sends.
BACKOFF_MAX = 10.0
# The longest wait of the station's own after up to three failures in a row
# (base 1 s, doubling): a Retry-After must be longer to be seen honoured.
OWN_BACKOFF = 4.0


def policy_request_bound(seconds, cap, base=1.0, runs=4000, quantile=0.999, seed=7):
    """How many requests a station following the policy can make during an
    outage of `seconds`: waits rand(0, min(cap, base*2^n)) after the n-th
    failure. Simulated; the 99.9th percentile, so a correct station stays
    under it except once in a thousand runs, while one retrying per queued
    item or without waiting goes far beyond."""
    rng = random.Random(seed)
    counts = []
    for _ in range(runs):
        t, n = 0.0, 0
        while t <= seconds:
            n += 1
            t += rng.uniform(0, min(cap, base * 2 ** (n - 1)))
        counts.append(n)
    counts.sort()
    return counts[int(quantile * (len(counts) - 1))]


class Schedule:
    def __init__(self, rng):
        self.rng = rng
        self.mode = "outage"
        self.deck = ALL_CLASSES[:]
        rng.shuffle(self.deck)
        self.injected = {c: 0 for c in ALL_CLASSES}
        self.limits = {c: 1 for c in HOLD_CLASSES} | {c: 1 for c in AUTH_CLASSES} | {"stall": 2}

    def decide(self, method, path, headers, length):
        if self.mode == "outage":
            return "outage"
        if self.mode != "faults" or self.rng.random() > 0.45:
            return None
        for i, cls in enumerate(self.deck):
            if self.injected[cls] >= self.limits.get(cls, 10 ** 9) or not applies(cls, method, length):
                continue
            self.deck.append(self.deck.pop(i))
            self.injected[cls] += 1
            return cls
        return None


def status_json(bin_dir, config):
    r = subprocess.run([os.path.join(bin_dir, "telestation"), "status", "--config", config, "--json"],
                       capture_output=True, text=True, timeout=60)
    return json.loads(r.stdout)


def wait_until(predicate, timeout, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", default=".build/debug")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--images", type=int, default=10)
    p.add_argument("--outage-seconds", type=float, default=12)
    p.add_argument("--fault-seconds", type=float, default=25, help="at least this long, until every class was injected")
    p.add_argument("--results", default=None)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    log(f"hub-fault campaign: seed {a.seed} (rerun with --seed {a.seed})")
    for cls, (_, headers, _) in STATUS_FAULTS.items():
        if "Retry-After" in headers and not OWN_BACKOFF < float(headers["Retry-After"]) <= BACKOFF_MAX:
            raise SystemExit(f"fault_proxy's {cls} sends Retry-After {headers['Retry-After']}: honouring it is only seen "
                             f"if it is above the station's own backoff ({OWN_BACKOFF:g} s) and within backoff_max ({BACKOFF_MAX:g} s)")
    rng = random.Random(a.seed)
    work = tempfile.mkdtemp(prefix="telestation-hubfaults.")
    started = time.monotonic()
    problems = []
    figures = {"campaign": "hub-faults", "seed": a.seed}
    state_dir = os.path.join(work, "state")
    store = os.path.join(work, "hub")
    right_token = os.path.join(work, "hub-token")
    with open(right_token, "w") as f:
        f.write("campaign-token-%d\n" % a.seed)
    station_token = os.path.join(work, "station-token")
    shutil.copy(right_token, station_token)
    os.chmod(station_token, 0o600)
    daemon_log = open(os.path.join(work, "daemon.log"), "a")
    hub = Hub(a.bin, store, os.path.join(work, "hub.log"), token_file=right_token)
    schedule = Schedule(rng)
    proxy = FaultProxy(hub.port, schedule.decide)
    config = os.path.join(work, "station.toml")
    write_config(config, state_dir, f"http://127.0.0.1:{proxy.port}/files/", free_port(), token_file=station_token,
                 backoff_max=f"{int(BACKOFF_MAX)}s", stall_timeout="5s")
    # Small chunks: more requests, so more places for faults.
    with open(config) as f:
        text = f.read().replace('max_chunk = "256KiB"', 'max_chunk = "32KiB"')
    with open(config, "w") as f:
        f.write(text)
    images = make_jpegs(os.path.join(work, "src"), a.images + 6, random.Random(a.seed + 1), 200, 500)
    queued = []
    case_no = [0]

    def enqueue(batch):
        for path, sha in batch:
            case_no[0] += 1
            case = f"{50000000 + case_no[0]}"
            r = subprocess.run([os.path.join(a.bin, "telestation"), "enqueue", "--config", config, "--case", case, path],
                               capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                problems.append(f"enqueue failed: {r.stderr}")
            queued.append((case, sha, None))

    def pending():
        rows, _ = spool_rows(state_dir)
        return [r for r in rows if r["state"] not in ("uploaded", "received", "held")]

    try:
        enqueue(images[: a.images])

        # 1. Outage.
        daemon = Daemon(a.bin, config, daemon_log)
        t0 = time.monotonic()
        time.sleep(a.outage_seconds)
        schedule.mode = "faults"
        during = [r for r in proxy.requests() if r[0] - t0 <= a.outage_seconds]
        bound = policy_request_bound(a.outage_seconds, BACKOFF_MAX)
        figures["outage"] = {"seconds": a.outage_seconds, "requests": len(during), "policy_bound": bound,
                             "queued_items": 2 * a.images}
        log(f"outage: {len(during)} requests in {a.outage_seconds:.0f} s (policy allows at most {bound})")
        if len(during) > bound:
            problems.append(f"{len(during)} requests during a {a.outage_seconds:.0f} s outage; the backoff policy allows {bound}")

        # 2. Faults, until every class was injected and the minimum time passed.
        t1 = time.monotonic()
        extra = iter(images[a.images:])
        limit = a.fault_seconds + 150
        while time.monotonic() - t1 < limit:
            if all(schedule.injected[c] > 0 for c in ALL_CLASSES) and time.monotonic() - t1 >= a.fault_seconds:
                break
            if not pending():
                batch = [x for x in [next(extra, None)] if x]
                if not batch:
                    # Run out of fresh files: queue an old one under a new case.
                    batch = [rng.choice(images)]
                enqueue(batch)
            time.sleep(0.5)
        schedule.mode = "recovered"
        fault_log = [r for r in proxy.requests() if r[3] not in (None, "outage")]
        missing = [c for c in ALL_CLASSES if schedule.injected[c] == 0]
        if missing:
            problems.append(f"classes never injected (no matching request in {limit:.0f} s): {missing}")
        figures["faults"] = {"seconds": round(time.monotonic() - t1, 1), "injected": dict(schedule.injected),
                             "total": len(fault_log)}
        log(f"faults: {len(fault_log)} injected: {json.dumps(schedule.injected, sort_keys=True)}")

        # Retry-After honoured: the station's next request comes no earlier.
        log_all = proxy.requests()
        honoured = 0
        gaps = {c: [] for c, f in STATUS_FAULTS.items() if "Retry-After" in f[1]}
        for i, (t, method, path, fault) in enumerate(log_all):
            wait = STATUS_FAULTS.get(fault, (0, {}, ""))[1].get("Retry-After")
            if wait is None or i + 1 >= len(log_all):
                continue
            gap = log_all[i + 1][0] - t
            gaps[fault].append(round(gap, 2))
            if gap < float(wait) - 0.25:
                problems.append(f"{fault} with Retry-After {wait} s on {method} {path}: next request {gap:.2f} s later")
            else:
                honoured += 1
        for cls, seen in gaps.items():
            if not seen:
                problems.append(f"no {cls} with Retry-After was followed by a request: honouring it was not observed")
        figures["retry_after_honoured"] = honoured
        figures["retry_after_gaps_s"] = {c: {"retry_after": STATUS_FAULTS[c][1]["Retry-After"], "gaps": g} for c, g in gaps.items()}
        log(f"Retry-After: next requests {gaps} s later")

        # 3. Recovery: everything not held arrives; held items show why.
        if not wait_until(lambda: not pending(), 150):
            problems.append(f"not delivered after the hub recovered: {[(r['id'], r['state'], r['last_error']) for r in pending()]}")
        status = status_json(a.bin, config)
        held = [i for i in status["items"] if i["state"] == "held"]
        held_reasons = sorted(i["last_error"] for i in held)
        figures["held_for_operator"] = len(held)
        for code in sorted(HOLD_CLASSES):
            if schedule.injected[code] and not any(f"({code})" in r for r in held_reasons):
                problems.append(f"an item refused with {code} is not shown as held with that reason: {held_reasons}")
        if len(held) > sum(schedule.injected[c] for c in HOLD_CLASSES):
            problems.append(f"more items held than refusals that hold: {held_reasons}")
        log(f"held, as status --json shows: {held_reasons}")
        r = subprocess.run([os.path.join(a.bin, "telestation"), "release", "--config", config, "--all-held"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            problems.append(f"release --all-held failed: {r.stdout} {r.stderr}")
        if not wait_until(lambda: not pending() and not [i for i in status_json(a.bin, config)["items"] if i["state"] == "held"], 120):
            problems.append("released items were not delivered")
        daemon.stop()

        # 4. A wrong token: the real hub answers 401 until the operator replaces it.
        with open(station_token, "w") as f:
            f.write("revoked-token\n")
        enqueue(images[-2:])
        daemon = Daemon(a.bin, config, daemon_log)
        refused = lambda: [i for i in status_json(a.bin, config)["items"]
                           if i["state"] == "failed" and "credentials (401)" in (i["last_error"] or "")]
        if not wait_until(lambda: len(refused()) > 0, 60):
            problems.append(f"a rejected token did not show in status --json: {status_json(a.bin, config)['items']}")
        else:
            figures["token_refusal_shown"] = refused()[0]["last_error"]
        daemon.stop()
        shutil.copy(right_token, station_token)
        daemon = Daemon(a.bin, config, daemon_log)
        if not wait_until(lambda: not pending(), 120):
            problems.append(f"not delivered after the token was replaced: {[(r['id'], r['state'], r['last_error']) for r in pending()]}")
        daemon.stop()

        rows = check_spool(a.bin, config, state_dir, problems)
        files = check_delivery(store, rows, queued, [], problems)
        uploaded = [r for r in rows if r["state"] in ("uploaded", "received")]
        figures.update({
            "items_delivered": len(uploaded), "images_queued": len(queued), "hub_uploads": len(files),
            "hub_bytes": sum(f["size"] for f in files),
            "attempts_total": sum(r["attempts"] for r in rows), "attempts_max_per_item": max(r["attempts"] for r in rows),
            "retries": sum(max(0, r["attempts"] - 1) for r in rows),
            "requests_seen_by_proxy": len(proxy.requests()),
            "resets_mid_body": schedule.injected["reset-mid-body"], "stalls": schedule.injected["stall"],
            "partial_headers": schedule.injected["partial-headers"],
            "classes_injected": sum(1 for c in ALL_CLASSES if schedule.injected[c]),
            "duration_s": round(time.monotonic() - started, 1), "problems": len(problems),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        })
        a.keep = a.keep or bool(problems)
        report(figures, a.results, problems, work)
        log(f"hub-fault campaign passed: {figures['faults']['total']} faults of {figures['classes_injected']} classes, "
            f"{len(uploaded)} items delivered once each, {figures['duration_s']:.0f} s (seed {a.seed})")
    finally:
        proxy.stop()
        for stop in (hub.stop, daemon_log.close) + (() if a.keep else (lambda: shutil.rmtree(work, ignore_errors=True),)):
            stop()


if __name__ == "__main__":
    main()
