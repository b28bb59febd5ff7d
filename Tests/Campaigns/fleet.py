#!/usr/bin/env python3
"""Fleet health, end to end (`make test-fleet`).

Two real stations (`telestation run` on the synthetic camera, `[health]
interval = "2s"`) report to a real `telestation-hub` on loopback; a real
Prometheus (Debian's `prometheus`, its own configuration and storage, a 1 s
scrape interval) scrapes the hub's /metrics with the shipped alert rules
loaded. Checked through Prometheus's HTTP query API: both stations' series,
labelled `station`, with plausible values. Then the hub is stopped: the
stations queue their reports (status shows them as health reports, never as
images), and when the hub comes back on the same port the queued reports
arrive late, in order, and Prometheus sees the newest. `promtool check
rules` and `promtool test rules` run on the shipped rules first.

Figures go to --results (bench/campaigns/fleet.json by default).
"""
import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from campaign import Daemon, Hub, LineReader, fail, free_port, log, make_jpegs, report, reusable_port, write_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RULES = os.path.join(ROOT, "hardware", "hub", "telestation-alerts.yml")
RULE_TESTS = os.path.join(ROOT, "hardware", "hub", "telestation-alerts.test.yml")
STATIONS = ["ps-fleet-a", "ps-fleet-b"]


def need_tools():
    missing = [t for t in ("prometheus", "promtool", "cjpeg") if shutil.which(t) is None]
    if missing:
        fail([f"{', '.join(missing)} not found: run `make deps-test` (installs Debian's prometheus and libjpeg-turbo-progs)"])


def promtool(figures, problems):
    t = time.monotonic()
    for args in (["check", "rules", RULES], ["test", "rules", RULE_TESTS]):
        r = subprocess.run(["promtool"] + args, capture_output=True, text=True, cwd=os.path.dirname(RULES))
        log(f"promtool {' '.join(args[:2])}: exit {r.returncode}")
        if r.returncode != 0:
            problems.append(f"promtool {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    figures["promtool_seconds"] = round(time.monotonic() - t, 2)


class Prometheus:
    def __init__(self, work, hub_port, log_path):
        self.port = free_port()
        self.dir = os.path.join(work, "prometheus")
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {RULES}
scrape_configs:
  - job_name: telestation-hub
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:{hub_port}"]
""")
        self.log_file = open(log_path, "a")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={os.path.join(self.dir, 'data')}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log_file, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"prometheus exited with {self.proc.returncode}; see {log_path}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        raise SystemExit(f"prometheus did not become ready; see {log_path}")

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"{path}: {body}")
        return body["data"]

    def query(self, expr):
        """{station: (value, labels)} for an instant query."""
        out = {}
        for s in self.api("query", query=expr)["result"]:
            out[s["metric"].get("station")] = (float(s["value"][1]), s["metric"])
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def wait_until(what, check, timeout, every=0.5):
    """Calls check() until it returns a true value; returns it, or None at the timeout."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            got = check()
            if got:
                return got
        except (OSError, RuntimeError, KeyError, ValueError) as e:
            last_error = e
        time.sleep(every)
    log(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))
    return None


def health_rows(state_dir):
    db = sqlite3.connect(os.path.join(state_dir, "queue.sqlite"))
    rows = db.execute("SELECT state, captured_at, file FROM item WHERE kind = 'health'").fetchall()
    db.close()
    return rows


def hub_health_uploads(store, station):
    """{item: (captured_at, completed_at)} of each health report the hub stored for station.
    The hub's times are whole seconds; the station's queue keeps fractions, so
    reports are matched by their item name, never by comparing the two clocks."""
    out = {}
    for name in os.listdir(store):
        if not name.endswith(".json.json"):
            continue
        with open(os.path.join(store, name)) as f:
            info = json.load(f)
        m = info.get("metadata", {})
        if m.get("kind") == "health" and m.get("station") == station and info.get("completed_at"):
            out[m["item"]] = (iso(m["captured_at"]), iso(info["completed_at"]))
    return out


def iso(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "campaigns", "fleet.json"))
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    bin_dir = os.path.abspath(a.bin)
    need_tools()
    started = time.monotonic()
    problems = []
    figures = {"stations": len(STATIONS), "health_interval_s": 2, "scrape_interval_s": 1}
    promtool(figures, problems)

    work = tempfile.mkdtemp(prefix="telestation-fleet-")
    log(f"work directory: {work}")
    hub_port = reusable_port()
    store = os.path.join(work, "hub")
    hub_log = os.path.join(work, "hub.log")
    hub = Hub(bin_dir, store, hub_log, port=hub_port)
    prom = None
    daemons = {}
    logs = []
    try:
        prom = Prometheus(work, hub_port, os.path.join(work, "prometheus.log"))
        configs = {}
        for sid in STATIONS:
            d = os.path.join(work, sid)
            os.makedirs(d)
            configs[sid] = os.path.join(d, "station.toml")
            write_config(configs[sid], os.path.join(d, "state"), hub.url, free_port(), station_id=sid,
                         extra='[health]\ninterval = "2s"\n')
        # Station A: one image to upload (last upload time) and a diagnose
        # verdict in its state directory (last diagnose); B has neither.
        a_cfg = configs[STATIONS[0]]
        jpg = make_jpegs(os.path.join(work, "jpegs"), 1, random.Random(16))[0][0]
        r = subprocess.run([os.path.join(bin_dir, "telestation"), "enqueue", jpg, "--case", "HC-004512", "--config", a_cfg],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            problems.append(f"telestation enqueue failed: {r.stdout}{r.stderr}")
        r = subprocess.run([os.path.join(bin_dir, "telestation"), "diagnose", "--only", "storage", "--config", a_cfg],
                           capture_output=True, text=True, timeout=120)
        log(f"diagnose --only storage on {STATIONS[0]}: exit {r.returncode}")
        diag_verdict = {0: 0, 1: 1}.get(r.returncode, 2)

        for sid in STATIONS:
            f = open(os.path.join(work, f"{sid}.log"), "a")
            logs.append(f)
            daemons[sid] = Daemon(bin_dir, configs[sid], f)
        t_daemons = time.monotonic()

        # 1. Both stations' series reach Prometheus through the hub.
        def both(expr):
            got = prom.query(expr)
            return got if all(s in got for s in STATIONS) else None

        info = wait_until("both stations in telestation_info", lambda: both("telestation_info"), 60)
        figures["first_scrape_after_start_s"] = round(time.monotonic() - t_daemons, 1)
        if not info:
            problems.append("Prometheus never saw telestation_info for both stations: " + str(prom.query("telestation_info")))
        else:
            for sid in STATIONS:
                labels = info[sid][1]
                if labels.get("job") != "telestation-hub" or labels.get("version") != "0.1.0":
                    problems.append(f"{sid}: telestation_info labels {labels}")
        # Station A's image is uploaded, then a later report says so.
        up = wait_until("station A's last upload", lambda: prom.query("telestation_last_upload_timestamp_seconds").get(STATIONS[0]), 60)
        if not up:
            problems.append("telestation_last_upload_timestamp_seconds never appeared for station A")
        elif abs(up[0] - time.time()) > 120:
            problems.append(f"station A's last upload time {up[0]} is not near now")
        if STATIONS[1] in prom.query("telestation_last_upload_timestamp_seconds"):
            problems.append("station B uploaded nothing, yet has a last upload time")
        cam = wait_until("both cameras streaming", lambda: (lambda g: g if all(g.get(s, (0,))[0] == 1 for s in STATIONS) else None)(
            prom.query("telestation_camera_ok")), 60)
        if not cam:
            problems.append(f"telestation_camera_ok is not 1 for both synthetic cameras: {prom.query('telestation_camera_ok')}")
        else:
            models = {s: prom.query("telestation_info")[s][1].get("camera_model") for s in STATIONS}
            if any(m != "synthetic test pattern" for m in models.values()):
                problems.append(f"camera_model labels {models}")
        def plausible(expr, ok):
            got = both(expr)
            return got if got and all(ok(v) for v, _ in got.values()) else None

        checks = {
            "telestation_queue_items": lambda v: v == 0,
            "telestation_queue_bytes": lambda v: v == 0,
            "telestation_oldest_pending_seconds": lambda v: v == 0,
            "telestation_disk_free_ratio": lambda v: 0 < v <= 1,
            "telestation_disk_free_bytes": lambda v: v > 10 << 20,
            "telestation_clock_synchronized": lambda v: v in (0, 1),
            "telestation_last_report_timestamp_seconds": lambda v: abs(v - time.time()) < 30,
            "telestation_report_received_timestamp_seconds": lambda v: abs(v - time.time()) < 30,
        }
        for expr, ok in checks.items():
            if not wait_until(expr, lambda: plausible(expr, ok), 30):
                problems.append(f"{expr}: implausible or missing for a station: {prom.query(expr)}")
        d = prom.query("telestation_diagnose_verdict")
        if d.get(STATIONS[0], (None,))[0] != diag_verdict or STATIONS[1] in d:
            problems.append(f"telestation_diagnose_verdict {d}: expected {diag_verdict} for A only")
        rules = prom.api("rules")["groups"]
        figures["alert_rules_loaded"] = sum(len(g["rules"]) for g in rules)
        if figures["alert_rules_loaded"] != 4:
            problems.append(f"Prometheus loaded {figures['alert_rules_loaded']} alert rules, not 4")
        with urllib.request.urlopen(f"http://127.0.0.1:{hub_port}/fleet", timeout=10) as r:
            page = r.read().decode()
        if not all(f"<td>{s}</td>" in page for s in STATIONS):
            problems.append("/fleet does not list both stations")

        # 2. The hub goes away: reports queue on the stations, as health reports.
        before = prom.query("telestation_last_report_timestamp_seconds")
        hub.stop()
        t_stop = time.time()
        offline = 8
        time.sleep(offline)
        a_state = os.path.join(work, STATIONS[0], "state")
        queued = [r for r in health_rows(a_state) if r[0] not in ("uploaded", "received") and r[1] >= t_stop]
        figures["reports_queued_offline"] = len(queued)
        if len(queued) < 2:
            problems.append(f"station A queued {len(queued)} health reports in {offline} s offline (interval 2 s)")
        st = subprocess.run([os.path.join(bin_dir, "telestation"), "status", "--json", "--config", a_cfg],
                            capture_output=True, text=True, timeout=60)
        try:
            status = json.loads(st.stdout)
            if any(i["kind"] == "health" for i in status["items"]) or status["counts"]["queued"] != 0:
                problems.append(f"status --json shows health reports as items: {status}")
            if status.get("health_pending", 0) < 2:
                problems.append(f"status --json health_pending {status.get('health_pending')}, expected >= 2")
            figures["status_health_pending"] = status.get("health_pending")
        except (json.JSONDecodeError, KeyError) as e:
            problems.append(f"status --json: {e}: {st.stdout[:300]} {st.stderr[:300]}")
        text = subprocess.run([os.path.join(bin_dir, "telestation"), "status", "--config", a_cfg],
                              capture_output=True, text=True, timeout=60).stdout
        if "health report(s) for the hub waiting" not in text or "\nID " in text:
            problems.append(f"status text: {text}")

        # 3. The hub returns on the same port: the queued reports arrive late.
        # The hub records times in whole seconds: a report made in the second
        # the hub came back is not one made offline.
        t_restart = int(time.time())
        hub = Hub(bin_dir, store, hub_log, port=hub_port)
        t_back = time.time()

        # Likewise a report queued in that second is not counted as one made offline.
        made_offline = {r[2]: r[1] for r in queued if r[1] < t_restart}

        def late_arrivals():
            at_hub = hub_health_uploads(store, STATIONS[0])
            got = {item: at_hub[item] for item in made_offline if item in at_hub}
            return got if len(got) == len(made_offline) and len(got) >= 2 else None

        late = wait_until("the offline reports at the hub", late_arrivals, 60)
        if not late:
            at_hub = hub_health_uploads(store, STATIONS[0])
            problems.append(f"of the {len(made_offline)} reports queued offline, these did not reach the hub: "
                            f"{sorted(set(made_offline) - set(at_hub))} (queued {made_offline}, t_stop {t_stop})")
        else:
            # Delay: the hub's completion (whole seconds) after the station made the report.
            delays = [late[item][1] - made_offline[item] for item in late]
            figures["late_reports"] = len(late)
            figures["late_report_delay_s_max"] = round(max(delays), 1)
            figures["late_report_delay_s_min"] = round(min(delays), 1)
            if any(done < t_restart for _, done in late.values()):
                problems.append(f"reports made offline were stored before the hub came back: {late}")
        newer = wait_until("newer reports in Prometheus", lambda: (lambda g: g if all(
            g.get(s, (0,))[0] > max(t_back - 5, before.get(s, (0,))[0]) for s in STATIONS) else None)(
            prom.query("telestation_last_report_timestamp_seconds")), 60)
        if not newer:
            problems.append("Prometheus did not see reports newer than the outage for both stations")
        leftover = [r for r in health_rows(a_state) if r[0] not in ("uploaded", "received") and r[1] < t_back]
        if leftover:
            problems.append(f"station A still holds {len(leftover)} reports from before the hub came back")
        fleet = json.load(open(os.path.join(store, "fleet.json")))
        if sorted(fleet["stations"]) != STATIONS:
            problems.append(f"fleet.json holds {sorted(fleet['stations'])}")
    finally:
        for dmn in daemons.values():
            dmn.stop()
        if prom:
            prom.stop()
        hub.stop()
        for f in logs:
            f.close()
    figures["duration_s"] = round(time.monotonic() - started, 1)
    report(figures, a.results, problems, work)
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    log("fleet: PASS")


if __name__ == "__main__":
    main()
