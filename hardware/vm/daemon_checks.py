#!/usr/bin/env python3
"""Runs inside the VM (see inside-vm.sh): the daemon `telestation run` on
vivid with a real telestation-hub on loopback, a virtual button made with
uinput, and vivid's error injections while it streams.

usage: daemon_checks.py TELESTATION TELESTATION_HUB OUTDIR UINPUT_BUTTON
Prints one "PASS text" or "FAIL text" line per check.
"""
import glob
import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

from evidence import frame_loss_evidence, settled

# Orthanc, started the way the PACS tests start it (Tests/Campaigns/pacs.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Campaigns"))
from pacs import Orthanc  # noqa: E402

BIN, HUB, OUT, BUTTON = (sys.argv[1:5] + [""] * 4)[:4]
DEV = "/dev/video0"
KIOSK = "http://127.0.0.1:8091"
LINK = "/dev/input/by-id/telestation-test-button-event-kbd"
# SQLite's locking does not work on the host directory the guest writes
# through (9p), so the spool and the hub's store live on the guest's own /tmp.
STATE = "/tmp/telestation-daemon-state"
HUB_STORE = "/tmp/telestation-hub-store"
CASE = {"case_id": "40123456", "site": "face"}
PATIENT = {"surnames": "MAMANI QUISPE", "given_names": "Rosa", "sex": "F", "age": 54}
CONSENT = "El paciente acepta que se tomen y envíen estas fotografías."
FOOT_SWITCH_CASE = {}
ORTHANC_PORT = 18042
VL_PHOTO = "1.2.840.10008.5.1.4.1.1.77.1.4"
SKIN_OF_FACE = "73897004"
# Longer than trigger.debounce (300 ms) and the held key's 600 ms of repeats.
QUIET_WINDOW = 2.0
# Seconds of stream over which frame loss is counted, with and without a fault.
LOSS_WINDOW = 8.0
# vivid's frame rate for the daemon's stream. Under software emulation on a
# busy host the daemon (the debug build above all) can take longer to make a
# live preview than vivid takes to fill its free buffers; vivid then drops
# frames, which the engine rightly counts: at the default 30 fps dozens in a
# window, enough to hide the injected 50 % loss. At 5 fps none are lost
# without the fault (release build, busy host), and the fault's (about 20 in
# a window) stand out.
STREAM_FPS = 5
accepted = []
# Queue id -> sha256 of the JPEG the camera made, for kiosk captures.
camera_jpegs = {}


def verdict(ok, text):
    print(("PASS " if ok else "FAIL ") + text, flush=True)
    return ok


def api(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(KIOSK + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw and r.headers.get("Content-Type", "").startswith("application/json") else raw)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw
    except OSError as e:
        return 0, str(e)


def status():
    code, s = api("GET", "/api/v1/status")
    return s if code == 200 else None


def wait(cond, limit):
    end = time.time() + limit
    while time.time() < end:
        try:
            v = cond()
            if v:
                return v
        except (KeyError, TypeError, IndexError):
            pass
        time.sleep(0.5)
    return None


def ctl(name, value=1):
    return subprocess.run(["v4l2-ctl", "-d", DEV, "-c", f"{name}={value}"], capture_output=True, text=True)


def alive(p):
    return p.poll() is None


class Button:
    def __init__(self):
        self.p = subprocess.Popen([BUTTON, "Telestation test button"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.link(self.p.stdout.readline().strip())

    def link(self, node):
        self.node = node
        os.makedirs(os.path.dirname(LINK), exist_ok=True)
        if os.path.lexists(LINK):
            os.unlink(LINK)
        os.symlink(node, LINK)  # what udev's by-id rule does on a station

    def send(self, command):
        self.p.stdin.write(command + "\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline().strip()
        if command == "plug":
            self.link(reply)
        elif command == "unplug":
            os.unlink(LINK)
        return reply


def last_event():
    s = status()
    return s["triggers"].get("last") if s else None


def seq():
    ev = last_event()
    return ev["sequence"] if ev else 0


def press_and_wait(button, command, before):
    button.send(command)
    return wait(lambda: (last_event() or {}).get("sequence", 0) > before and last_event(), 90)


def capture_and_send(label):
    """The kiosk's own capture: POST a capture, then Send."""
    code, item = api("POST", "/api/v1/captures", CASE)
    if code != 201:
        return f"capture answered {code}: {item}"
    code, jpeg = api("GET", f"/api/v1/captures/{item['id']}/image")
    code, q = api("POST", f"/api/v1/captures/{item['id']}/accept")
    if code != 200:
        return f"accept answered {code}: {q}"
    accepted.append(q["id"])
    if isinstance(jpeg, bytes) and jpeg[:2] == b"\xff\xd8":
        camera_jpegs[q["id"]] = hashlib.sha256(jpeg).hexdigest()
    return None


def jpeg_fragment(dicom):
    """The JPEG encapsulated in a DICOM object: (7FE0,0010) OB of undefined
    length, an empty basic offset table item, then one fragment item."""
    at = dicom.find(b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff")
    if at < 0:
        return None
    at += 12
    if dicom[at:at + 4] != b"\xfe\xff\x00\xe0":
        return None
    at += 8 + int.from_bytes(dicom[at + 4:at + 8], "little")
    if dicom[at:at + 4] != b"\xfe\xff\x00\xe0":
        return None
    n = int.from_bytes(dicom[at + 4:at + 8], "little")
    frame = dicom[at + 8:at + 8 + n]
    # An odd JPEG is padded with one 0x00 after its EOI.
    return frame[:-1] if frame.endswith(b"\xff\xd9\x00") else frame


def uploaded_count():
    return len([f for f in glob.glob(f"{HUB_STORE}/*.json")])


def main():
    os.makedirs(HUB_STORE, exist_ok=True)
    hub_out = open(f"{OUT}/hub.out", "w")
    try:
        orthanc = Orthanc(OUT, "vm", "/tmp/telestation-orthanc", ORTHANC_PORT)
    except Exception as e:
        verdict(False, f"Orthanc did not start in the VM: {e}")
        return
    hub = subprocess.Popen([HUB, "--listen", "127.0.0.1:18080", "--store", HUB_STORE,
                            "--stow-url", f"http://127.0.0.1:{ORTHANC_PORT}/dicom-web", "--stow-retry-max", "5"],
                           stdout=hub_out, stderr=subprocess.STDOUT)
    if not wait(lambda: "listening" in open(f"{OUT}/hub.out").read(), 120):
        verdict(False, f"telestation-hub did not start: {open(f'{OUT}/hub.out').read()[-300:]}")
        return
    button = Button()
    # The spool key, 32 bytes and 0600, as the package's postinst makes it.
    key = "/tmp/telestation-spool.key"
    if os.path.exists(key):
        os.unlink(key)
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    with open(f"{OUT}/daemon.toml", "w") as f:
        f.write(f"""[station]
id = "ps-vm-daemon"
state_dir = "{STATE}"
[hub]
url = "http://127.0.0.1:18080/files/"
[camera]
device = "{DEV}"
format = "yuyv"
width = 640
height = 480
warmup_frames = 2
[kiosk]
listen = "127.0.0.1:8091"
[spool]
min_free = "1MiB"
key_file = "{key}"
[dicom]
enabled = true
institution = "Puesto de Salud VM"
[trigger]
camera_button = true
evdev_device = "{LINK}"
evdev_key = "KEY_CAMERA"
debounce = "300ms"
""")
    # vivid keeps the frame interval across opens and format changes of the same size.
    parm = subprocess.run(["v4l2-ctl", "-d", DEV, "--set-fmt-video=width=640,height=480,pixelformat=YUYV",
                           f"--set-parm={STREAM_FPS}"], capture_output=True, text=True)
    if parm.returncode != 0:
        print(f"v4l2-ctl --set-parm={STREAM_FPS}: {parm.stderr.strip()}", flush=True)
    log = open(f"{OUT}/daemon.log", "w")
    daemon = subprocess.Popen([BIN, "run", "--config", f"{OUT}/daemon.toml"], stdout=log, stderr=subprocess.STDOUT)
    try:
        run_checks(daemon, button)
        pacs_checks(orthanc)
    except Exception as e:  # a broken check must show as a FAIL line, not vanish
        verdict(False, f"daemon checks stopped: {e!r}")
    finally:
        if alive(daemon):
            daemon.terminate()
            try:
                rc = daemon.wait(60)
                verdict(rc == 0, f"the daemon stops on SIGTERM with exit {rc} after the whole campaign")
            except subprocess.TimeoutExpired:
                daemon.kill()
                verdict(False, "the daemon did not stop within 60 s of SIGTERM")
        button.send("quit")
        hub.terminate()
        hub.wait(30)
        orthanc.stop()


def get_ctrl(name):
    out = subprocess.run(["v4l2-ctl", "-d", DEV, "--get-ctrl", name], capture_output=True, text=True).stdout
    return out.split(":")[-1].strip()


def camera_controls():
    """Runtime camera controls through the daemon's one open stream, on vivid."""
    code, lst = api("GET", "/api/v1/camera/controls")
    by_name = {c["name"]: c for c in lst} if code == 200 and isinstance(lst, list) else {}
    b = by_name.get("brightness", {})
    verdict(b.get("minimum") == 0 and b.get("maximum") == 255 and by_name.get("gain", {}).get("inactive") is True,
            f"GET /api/v1/camera/controls lists vivid's controls from the open stream ({len(by_name)}: brightness "
            f"{b.get('value')} in {b.get('minimum')}..{b.get('maximum')}, gain inactive while gain_automatic is on)")
    code, r = api("PUT", "/api/v1/camera/controls/brightness", {"value": 200})
    now = get_ctrl("brightness")
    verdict(code == 200 and isinstance(r, dict) and r.get("value") == 200 and now == "200",
            f"PUT brightness 200 answers {code} with the value the driver kept ({r.get('value') if isinstance(r, dict) else r}); "
            f"v4l2-ctl reads {now}")
    code, r = api("PUT", "/api/v1/camera/controls/brightness", {"value": 300})
    msg = r.get("error", {}).get("message", "") if isinstance(r, dict) else str(r)
    verdict(code == 400 and "between 0 and 255" in msg and get_ctrl("brightness") == "200",
            f"PUT brightness 300 is refused ({code}: \"{msg}\") and changes nothing")
    code, r = api("PUT", "/api/v1/camera/controls/gain", {"value": 50})
    msg = r.get("error", {}).get("message", "") if isinstance(r, dict) else str(r)
    verdict(code == 409 and "gain_automatic" in msg, f"PUT gain while gain_automatic is on: {code} \"{msg}\"")
    api("PUT", "/api/v1/camera/controls/brightness", {"value": 128})


def run_checks(daemon, button):
    s = wait(lambda: not alive(daemon) or ((st := status()) and st["health"]["camera"] == "ok" and st), 180)
    s = s if alive(daemon) else None
    last_log = (open(f"{OUT}/daemon.log").read().strip().splitlines() or [""])[-1]
    if not verdict(bool(s), "telestation run streams from vivid and answers /api/v1/status" + ("" if s else f": {last_log}")):
        print(open(f"{OUT}/daemon.log").read()[-2000:], file=sys.stderr)
        return
    camera_controls()
    devices = {d["kind"]: d for d in s["triggers"]["devices"]}
    key = wait(lambda: [d for d in status()["triggers"]["devices"] if d["kind"] == "key" and d["connected"]], 60)
    cam = devices.get("camera_button", {})
    verdict(bool(key) and not cam.get("connected", True),
            f"status lists the foot-switch key as connected ({key[0]['device'] if key else devices}) and the camera button as absent "
            f"(\"{cam.get('detail')}\": vivid is no USB camera)")

    # No case open on the kiosk: the press takes nothing and says why.
    ev = press_and_wait(button, "press", seq())
    verdict(ev and ev["outcome"] == "needs_case" and ev["trigger"] == "key",
            f"KEY_CAMERA with no case open: outcome {ev and ev['outcome']}, nothing taken")

    code, t = api("PUT", "/api/v1/case", CASE)
    verdict(code == 200 and t["case_open"], f"PUT /api/v1/case opens case {CASE['case_id']} for the buttons ({code})")
    # Presses closer together than trigger.debounce (300 ms) count as one, and
    # the first press can be answered within that: let its window pass.
    time.sleep(1)
    before = seq()
    ev = press_and_wait(button, "press", before)
    ok = bool(ev) and ev["outcome"] == "captured" and ev.get("review", {}).get("trigger") == "key"
    if ok:
        code, jpeg = api("GET", f"/api/v1/captures/{ev['review']['id']}/image")
        open(f"{OUT}/trigger-still.jpg", "wb").write(jpeg if isinstance(jpeg, bytes) else b"")
        check = subprocess.run(["python3", f"{os.path.dirname(__file__)}/check_jpeg.py", f"{OUT}/trigger-still.jpg", "640", "480", "--bars"],
                               capture_output=True, text=True)
        ok = check.returncode == 0
        code, q = api("POST", f"/api/v1/captures/{ev['review']['id']}/accept")
        ok = ok and code == 200
        if ok:
            accepted.append(q["id"])
            code, queue = api("GET", "/api/v1/queue")
            ok = any(i["id"] == q["id"] and i["case_id"] == CASE["case_id"] for i in queue["items"])
    logged = wait(lambda: "(captured by key)" in open(f"{OUT}/daemon.log").read(), 30)
    verdict(ok and bool(logged),
            f"KEY_CAMERA from the uinput device captures from vivid into case {CASE['case_id']}: review item with trigger \"key\", "
            f"colour bars in the 640x480 still, Send puts it in the spool queue (item {accepted[-1] if accepted else '-'}), "
            f"daemon log \"queued item ... (captured by key)\"")

    # A whole case by the foot switch alone: the kiosk opens the case with the
    # next image's type, each press takes that image for review, and Send files
    # the three as one case (one study in Orthanc, checked in pacs_checks).
    reviews = []
    for role in ("overview", "close_up", "dermoscopic"):
        api("PUT", "/api/v1/case", dict(CASE, role=role, aspect="front", patient=PATIENT, consent=CONSENT))
        time.sleep(1)  # past the debounce window of the last press
        ev = press_and_wait(button, "press", seq())
        if ev and ev.get("outcome") == "captured":
            reviews.append(ev["review"])
    roles = [r["request"].get("role") for r in reviews]
    code, sent = api("POST", "/api/v1/cases", {"ids": [r["id"] for r in reviews],
                                               "case": {"case_id": CASE["case_id"], "patient": PATIENT, "consent": CONSENT,
                                                        "history": {"duration": "2 semanas", "itching": True}}})
    ok = code == 201 and len(sent.get("items", [])) == 3 and roles == ["overview", "close_up", "dermoscopic"]
    if ok:
        accepted.extend(i["id"] for i in sent["items"])
        FOOT_SWITCH_CASE.update(uid=sent["case_uid"], items=[i["id"] for i in sent["items"]])
    verdict(ok, f"a three-image case by the foot switch alone (types {roles}, each press one image of the open case), "
            f"sent as one case: POST /api/v1/cases answered {code}" + (f", case {sent.get('case_uid')}" if ok else f": {sent}"))

    # A bouncing contact and a held key (20 autorepeats) each capture once.
    # A second capture from a late bounce or repeat would come after the
    # first: the count must stay the same over a quiet window (well past the
    # 300 ms debounce) before it is read.
    counts, steady = [], []
    for command in ("bounce", "hold"):
        before = seq()
        ev = press_and_wait(button, command, before)
        n, ok = settled(lambda: seq() - before, quiet=QUIET_WINDOW, limit=20)
        counts.append(n)
        steady.append(ok)
        if ev and ev.get("review"):
            api("POST", f"/api/v1/captures/{ev['review']['id']}/retake")
    verdict(counts == [1, 1] and all(steady),
            f"a bouncing press and a held key (20 autorepeats) capture once each: {counts} events, "
            f"unchanged over a {QUIET_WINDOW:g} s quiet window: {steady}")

    # Hot-plug: the button goes away and comes back.
    button.send("unplug")
    gone = wait(lambda: [d for d in status()["triggers"]["devices"] if d["kind"] == "key" and not d["connected"]], 60)
    button.send("plug")
    back = wait(lambda: [d for d in status()["triggers"]["devices"] if d["kind"] == "key" and d["connected"]], 60)
    ev = press_and_wait(button, "press", seq()) if back else None
    if ev and ev.get("review"):
        api("POST", f"/api/v1/captures/{ev['review']['id']}/retake")
    verdict(bool(gone) and bool(back) and ev and ev["outcome"] == "captured" and alive(daemon),
            f"button unplugged: status says \"{gone[0]['detail'] if gone else '?'}\"; plugged back as {button.node}: found again and captures")

    camera_faults(daemon)

    # Everything Sent reaches the hub, and is received only once filed in Orthanc.
    def all_received():
        code, q = api("GET", "/api/v1/queue")
        states = {i["id"]: i["state"] for i in q["items"]}
        return all(states.get(a) == "received" for a in accepted) and states
    done = wait(all_received, 240)
    code, q = api("GET", "/api/v1/queue")
    cases = {c["case_id"]: c for c in q.get("cases", [])} if code == 200 else {}
    verdict(bool(done) and uploaded_count() >= len(accepted),
            f"all {len(accepted)} images Sent during the campaign are uploaded to telestation-hub on loopback "
            f"({uploaded_count()} completed uploads in its store, previews included) and received: the hub's receipt "
            f"says each is filed in Orthanc (kiosk: case {CASE['case_id']} {cases.get(CASE['case_id'], {}).get('received')} "
            f"of {cases.get(CASE['case_id'], {}).get('images')} received)")


def pacs_checks(orthanc):
    """Each capture is one DICOM instance in Orthanc: right patient, SOP
    class, body site, device; valid for dciodvfy; the camera's JPEG inside,
    byte for byte."""
    ids = orthanc.get("/instances")
    problems = []
    fragments = set()
    devices = set()
    all_tags = []
    for oid in ids:
        tags = orthanc.get(f"/instances/{oid}/simplified-tags")
        all_tags.append(tags)
        for key, want in [("PatientID", CASE["case_id"]), ("SOPClassUID", VL_PHOTO), ("Modality", "XC"),
                          ("InstitutionName", "Puesto de Salud VM")]:
            if tags.get(key) != want:
                problems.append(f"{oid}: {key} {tags.get(key)!r}, expected {want!r}")
        region = tags.get("AnatomicRegionSequence") or [{}]
        if region[0].get("CodeValue") != SKIN_OF_FACE:
            problems.append(f"{oid}: body site {region[0].get('CodeValue')!r}, expected {SKIN_OF_FACE} (face)")
        devices.add(f"{tags.get('Manufacturer')} / {tags.get('ManufacturerModelName')}")
        path = f"/tmp/telestation-orthanc-{oid}.dcm"
        req = urllib.request.Request(f"{orthanc.url}/instances/{oid}/file")
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
        with open(path, "wb") as f:
            f.write(data)
        check = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
        errors = [ln for ln in (check.stdout + check.stderr).splitlines() if ln.startswith("Error")]
        if errors:
            problems.append(f"{oid}: dciodvfy: {errors[:2]}")
        frame = jpeg_fragment(data)
        if frame:
            fragments.add(hashlib.sha256(frame).hexdigest())
    # The foot switch's case: its three instances in one study of their own, with the patient's name and age.
    in_case = [t for t in all_tags if t.get("PatientAge") == "054Y"]
    if FOOT_SWITCH_CASE and (len(in_case) != 3 or len({t.get("StudyInstanceUID") for t in in_case}) != 1
                             or any(t.get("PatientName") != "MAMANI QUISPE^Rosa" for t in in_case)
                             or in_case[0].get("StudyInstanceUID") in {t.get("StudyInstanceUID") for t in all_tags if t not in in_case}):
        problems.append(f"the foot switch's case is not one study of 3 instances: "
                        f"{[(t.get('StudyInstanceUID'), t.get('PatientName'), t.get('PatientAge')) for t in in_case]}")
    missing = [i for i, sha in camera_jpegs.items() if sha not in fragments]
    if len(ids) != len(accepted):
        problems.append(f"Orthanc holds {len(ids)} instances for {len(accepted)} images sent")
    if missing or not camera_jpegs:
        problems.append(f"the camera's JPEG of item(s) {missing or '(none recorded)'} is not byte-identical inside any instance")
    if not any(d.startswith("vivid") for d in devices):
        problems.append(f"the device is not vivid in the objects: {sorted(devices)}")
    verdict(not problems, f"{len(ids)} DICOM instances in Orthanc for {len(accepted)} images (patient {CASE['case_id']}, "
            f"VL Photographic, Skin of face {SKIN_OF_FACE}, device {sorted(devices)}), no dciodvfy errors, "
            f"{len(camera_jpegs)} camera JPEGs byte-identical inside"
            + (f"; the foot switch's case in one study of its own" if FOOT_SWITCH_CASE else "")
            + (f": {problems[:3]}" if problems else ""))


def stream_fps():
    """vivid's frame rate as v4l2-ctl reads it, for the verdict."""
    try:
        out = subprocess.run(["v4l2-ctl", "-d", DEV, "-P"], capture_output=True, text=True).stdout
    except OSError:
        out = ""
    fps = [ln.split(":", 1)[1].split()[0] for ln in out.splitlines() if "Frames per second" in ln]
    return f"{float(fps[0]):g} fps" if fps else "an unknown frame rate"


def camera_faults(daemon):
    """vivid's error injections under the running daemon. Faults the engine
    rides out leave no error: the frame-loss counts in the status must show
    that the fault reached it. (Tests/Scripts runs this against a fake station.)"""
    faults = [
        ("dropped buffers (percentage_of_dropped_buffers=50)", [("percentage_of_dropped_buffers", 50)], None, "frames_dropped"),
        ("damaged buffer (inject_v4l2_buf_flag_error)", [("inject_v4l2_buf_flag_error", 1)], None, "frames_damaged"),
        ("QBUF error mid-stream (inject_vidioc_qbuf_error)", [("inject_vidioc_qbuf_error", 1)], "VIDIOC_QBUF", None),
        ("STREAMON error on the reopen after a QBUF error", [("inject_vidioc_streamon_error", 1), ("inject_vidioc_qbuf_error", 1)], "VIDIOC_STREAMON", None),
        ("Disconnect (disconnect)", [("disconnect", 1)], "disconnected", None),
    ]
    health = lambda: (status() or {}).get("health", {})
    for name, controls, expect, counter in faults:
        at_before = health().get("camera_error_at")
        if counter:
            # The count's own rise over a window without the fault.
            start = health().get(counter)
            time.sleep(LOSS_WINDOW)
            before = health().get(counter)
            baseline = None if start is None or before is None else before - start
        for c, v in controls:
            r = ctl(c, v)
            if r.returncode != 0:
                verdict(False, f"fault {name}: v4l2-ctl {c}={v}: {r.stderr.strip()}")
        shown = None
        if expect:
            shown = wait(lambda: (h := status()["health"]).get("camera_error_at") != at_before and expect in h.get("camera_error", "") and h, 90)
        evidence = (False, "")
        if counter == "frames_dropped":
            time.sleep(LOSS_WINDOW)
            evidence = frame_loss_evidence(counter, before, baseline, health().get(counter))
            evidence = (evidence[0], evidence[1] + f" at {stream_fps()}")
        elif counter:
            wait(lambda: (n := health().get(counter)) is not None and before is not None and n > before, 30)
            evidence = frame_loss_evidence(counter, before, baseline, health().get(counter))
        recovered = wait(lambda: status()["health"]["camera"] == "ok", 120)
        problem = capture_and_send(name)
        if controls[0][0] == "percentage_of_dropped_buffers":
            ctl("percentage_of_dropped_buffers", 0)
        quiet = not expect and health().get("camera_error_at") == at_before
        if shown:
            seen = f"status showed camera_error \"{shown['camera_error']}\""
        elif counter:
            seen = evidence[1] + (", no camera error" if quiet else f", but a camera error: {health().get('camera_error')}")
        else:
            seen = f"status did not show the expected error ({health().get('camera_error')})"
        reached = bool(shown) if expect else evidence[0] and quiet
        verdict(alive(daemon) and reached and recovered and problem is None,
                f"fault {name}: daemon running, {seen}, camera ok again, kiosk capture + Send afterwards "
                f"{'ok' if problem is None else 'failed: ' + problem}")


if __name__ == "__main__":
    main()
