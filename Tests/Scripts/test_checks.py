#!/usr/bin/env python3
"""The checks' own logic, without what they check: the skip report, the VM
harness's evidence rules (hardware/vm/evidence.py), the uplink bench's
intactness. Each is fed recorded or synthetic input for which it must fail.

    python3 -m unittest discover -s Tests/Scripts      (make test-scripts)
"""
import contextlib
import importlib.util
import io
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "Tests"))
sys.path.insert(0, str(ROOT / "hardware" / "vm"))
import skips  # noqa: E402
from evidence import frame_loss_evidence, settled  # noqa: E402


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Recorded from `swift test` (Swift 6.3.1) with a test disabled by
# `.enabled(if:)`; a Swift Testing skip without a comment, and XCTest's, added.
SWIFT_LOG = (Path(__file__).parent / "swift-test-skip.log").read_text() + """\
\u279c Test other() skipped.
Test Case 'A.testB' skipped (0.0 seconds)
"""


class SkipReportTests(unittest.TestCase):
    def test_swift_testing_and_xctest_skips_are_found(self):
        found, ran = skips.swift_log("UplinkTests", SWIFT_LOG)
        self.assertEqual(found, [
            ("UplinkTests/uploadTheBenchFiles()", "run by bench/uplink/run.py"),
            ("UplinkTests/other()", "no reason given"),
            ("UplinkTests/A.testB", "XCTest skip (its reason is in the log)"),
        ])
        self.assertEqual(ran, 16)

    def test_a_log_where_nothing_ran_fails(self):
        with tempfile.TemporaryDirectory() as d:
            log = Path(d) / "swift.log"
            log.write_text("\u2714 Test run with 0 tests passed after 0.001 seconds.\n")
            r = subprocess.run([sys.executable, str(ROOT / "Tests/skips.py"), "swift-log", "NoSuchTests", str(log)],
                               capture_output=True, text=True, env=dict(os.environ, TEST_SKIP_FILE=str(Path(d) / "s.txt")))
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("no test run", r.stderr)

    def test_vm_skip_lines(self):
        md = "- PASS a\n- SKIP vm.gpio: no gpio-sim in 6.1\n- FAIL b\n"
        self.assertEqual(skips.vm_skips(md), [("vm.gpio", "no gpio-sim in 6.1")])

    def test_recorded_skips_are_printed_and_judged(self):
        with tempfile.TemporaryDirectory() as d:
            env = dict(os.environ, TEST_SKIP_FILE=str(Path(d) / "test-deb.txt"))
            add = [sys.executable, str(ROOT / "Tests/skips.py"), "add"]
            self.assertEqual(subprocess.run(add + ["deb.install", "not root"], env=env, capture_output=True).returncode, 0)
            self.assertEqual((Path(d) / "test-deb.txt").read_text(), "test-deb deb.install: not root\n")
            with open(Path(d) / "test-hw.txt", "w") as f:
                f.write("test-hw vm.gpio: no gpio-sim\n")
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                self.assertEqual(skips.check(d, {"vm.gpio": "the kernel lacks it"}), 1, "deb.install is not allowed")
                self.assertEqual(skips.check(d, {"vm.gpio": "x", "deb.install": "y"}), 0)
            self.assertIn("test-deb deb.install: not root\n      NOT ALLOWED", out.getvalue())

    def test_without_a_skip_file_a_skip_is_judged_at_once(self):
        env = {k: v for k, v in os.environ.items() if k != "TEST_SKIP_FILE"}
        cmd = [sys.executable, str(ROOT / "Tests/skips.py"), "add"]
        self.assertEqual(subprocess.run(cmd + ["deb.install", "not root"], env=env, capture_output=True).returncode, 1)
        self.assertEqual(subprocess.run(cmd + ["vm.gpio", "no gpio-sim"], env=env, capture_output=True).returncode, 0)

    def test_the_allow_list_gives_a_reason_for_each_entry(self):
        allowed = skips.allow_list()
        self.assertTrue(allowed)
        self.assertTrue(all(len(reason) > 20 for reason in allowed.values()), allowed)


class VMEvidenceTests(unittest.TestCase):
    def reader(self, values):
        values = list(values)
        return lambda: values.pop(0) if len(values) > 1 else values[0]

    def test_a_count_is_read_only_once_it_stays_put(self):
        clock = [0.0]
        sleep = lambda s: clock.__setitem__(0, clock[0] + s)
        # A late second capture arrives after the first read: it is counted.
        self.assertEqual(settled(self.reader([1, 2, 2]), 2, 20, sleep=sleep, clock=lambda: clock[0]), (2, True))
        # A count that never settles is not a reading.
        n, ok = settled(iter(range(100)).__next__, 2, 10, sleep=sleep, clock=lambda: clock[0])
        self.assertFalse(ok)

    def test_dropped_frames_must_rise_above_the_engines_own(self):
        self.assertTrue(frame_loss_evidence("frames_dropped", 10, 0, 80)[0])
        # No rise: the fault did not reach the engine.
        self.assertFalse(frame_loss_evidence("frames_dropped", 10, 0, 10)[0])
        # A rise no larger than without the fault proves nothing.
        self.assertFalse(frame_loss_evidence("frames_dropped", 100, 30, 140)[0])
        # A daemon without the counter cannot pass.
        self.assertFalse(frame_loss_evidence("frames_dropped", None, None, None)[0])

    def test_a_damaged_buffer_must_be_counted(self):
        self.assertTrue(frame_loss_evidence("frames_damaged", 0, 0, 1)[0])
        self.assertFalse(frame_loss_evidence("frames_damaged", 0, 0, 0)[0])
        self.assertFalse(frame_loss_evidence("frames_damaged", 3, 2, 9)[0], "damaged without a fault: cannot tell")

    def test_a_recorded_status_without_counters_fails(self):
        # /api/v1/status health as daemons before the counters answered it.
        health = {"camera": "ok", "disk_nearly_full": False, "free_bytes": 1 << 30}
        self.assertFalse(frame_loss_evidence("frames_dropped", health.get("frames_dropped"), 0, health.get("frames_dropped"))[0])


class FakeTime:
    """Virtual seconds: the checks' waits and windows pass at once."""
    def __init__(self):
        self.now = 1_000_000.0

    def time(self):
        return self.now

    monotonic = time

    def sleep(self, seconds):
        self.now += seconds


class FakeStation:
    """The daemon's /api/v1/status under vivid's injections, as the VM sees
    it: `counters` False is a daemon from before the frame-loss counts,
    `drops_reach` False a fault that never reaches the engine."""
    def __init__(self, counters=True, drops_reach=True, damage_reaches=True):
        self.health = {"camera": "ok", "camera_error": None, "camera_error_at": None}
        if counters:
            self.health.update(frames_dropped=0, frames_damaged=0)
        self.drops_reach, self.damage_reaches = drops_reach, damage_reaches
        self.dropping = self.streamon_armed = False
        self.errors = 0

    def status(self):
        if self.dropping and self.drops_reach and "frames_dropped" in self.health:
            self.health["frames_dropped"] += 20
        return {"health": dict(self.health)}

    def error(self, text):
        self.errors += 1
        self.health.update(camera_error=text, camera_error_at=f"2026-11-30T00:00:{self.errors:02d}Z")

    def ctl(self, name, value=1):
        if name == "percentage_of_dropped_buffers":
            self.dropping = value > 0
        elif name == "inject_v4l2_buf_flag_error":
            if self.damage_reaches and "frames_damaged" in self.health:
                self.health["frames_damaged"] += 1
        elif name == "inject_vidioc_streamon_error":
            self.streamon_armed = True
        elif name == "inject_vidioc_qbuf_error":
            self.error("VIDIOC_STREAMON on /dev/video0 failed" if self.streamon_armed else "VIDIOC_QBUF on /dev/video0 failed")
            self.streamon_armed = False
        elif name == "disconnect":
            self.error("camera /dev/video0 was disconnected")
        return subprocess.CompletedProcess([], 0, "", "")


class DaemonFaultChecksTests(unittest.TestCase):
    """hardware/vm/daemon_checks.py's camera-fault checks, run against a fake station."""
    def run_faults(self, station):
        dc = load("hardware/vm/daemon_checks.py", "daemon_checks")
        dc.time = FakeTime()
        dc.status, dc.ctl = station.status, station.ctl
        dc.capture_and_send = lambda name: None
        dc.alive = lambda daemon: True
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            dc.camera_faults(daemon=None)
        return [line.split(" ", 1)[0] for line in out.getvalue().splitlines()], out.getvalue()

    def test_faults_that_reach_the_engine_pass(self):
        verdicts, text = self.run_faults(FakeStation())
        self.assertEqual(verdicts, ["PASS"] * 5, text)
        self.assertIn("frames_dropped rose by 20", text)

    def test_no_error_shown_is_no_evidence(self):
        # The old daemon: no counts, no error: the rode-out faults cannot pass.
        verdicts, text = self.run_faults(FakeStation(counters=False))
        self.assertEqual(verdicts, ["FAIL", "FAIL", "PASS", "PASS", "PASS"], text)
        verdicts, text = self.run_faults(FakeStation(drops_reach=False, damage_reaches=False))
        self.assertEqual(verdicts, ["FAIL", "FAIL", "PASS", "PASS", "PASS"], text)


class UplinkBenchIntactTests(unittest.TestCase):
    def test_a_missing_or_different_file_is_not_intact(self):
        run = load("bench/uplink/run.py", "uplink_bench")
        with tempfile.TemporaryDirectory() as d:
            d = Path(d)
            (d / "src").mkdir()
            (d / "store").mkdir()
            files = [d / "src" / "case-preview.jpg", d / "src" / "case-image-0.jpg"]
            for i, f in enumerate(files):
                f.write_bytes(bytes([i]) * 1000)
            (d / "store" / "abc-case-preview.jpg").write_bytes(files[0].read_bytes())
            ok, copies, problems = run.intact(d / "store", files)
            self.assertFalse(ok)
            self.assertEqual(problems, ["case-image-0.jpg is not on the hub"])
            (d / "store" / "def-case-image-0.jpg").write_bytes(b"x" * 1000)
            self.assertFalse(run.intact(d / "store", files)[0])
            (d / "store" / "def-case-image-0.jpg").write_bytes(files[1].read_bytes())
            self.assertEqual(run.intact(d / "store", files), (True, {"case-preview.jpg": 1, "case-image-0.jpg": 1}, []))


if __name__ == "__main__":
    unittest.main()
