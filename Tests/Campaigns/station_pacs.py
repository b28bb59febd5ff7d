#!/usr/bin/env python3
"""Sent means filed, from the station's side: the real `telestation enqueue`
and `telestation sync` with [dicom] on, through telestation-hub --stow-url,
into a real Orthanc (Debian's orthanc + orthanc-dicomweb) on loopback.

    station_pacs.py --bin .build/debug [--results FILE]

1. Two camera JPEGs are queued (one dermoscopic with the patient's name, sex
   and birth date, one clinical photograph), for a DNI given with its check
   character, while Orthanc is stopped. `sync` delivers every byte: the
   status says 2 uploaded, 2 waiting for a receipt, 0 received.
2. A hub that loses an image after its last byte: its stored upload is
   deleted (hub stopped and restarted), so its receipt answers 404; the
   station sends the image again, as a new upload.
3. Orthanc started: `sync --wait-receipts` ends with both images received,
   only now. Then Orthanc refusing (a Lua filter drops what STOW-RS says it
   stored): a third image is sent but not received; Orthanc accepting
   again: received. Orthanc's REST API holds exactly one instance per image with the
   right patient, SOP class, body site (SNOMED code) and device; each file
   Orthanc serves passes dciodvfy and carries the camera's JPEG byte for
   byte (pydicom).
4. A plain tus server (aiohttp-tus, not written here) gets the same images as
   before; the station says "sent, no receipt" and asks for none.
A missing tool fails: run `make deps-test`.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from campaign import free_port, log, make_jpegs, write_results  # noqa: E402
from pacs import DICOMWEB, Failed, Hub, Orthanc, http  # noqa: E402

import random  # noqa: E402

DMS = "1.2.840.10008.5.1.4.1.1.77.1.7"
VL_PHOTO = "1.2.840.10008.5.1.4.1.1.77.1.4"
DNI, DNI_CHECK = "10117410", "2"   # python-stdnum's example: 10117410-2 is valid
SUPPORT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support")


def need_tools():
    missing = [t for t in ["Orthanc", "dciodvfy", "cjpeg"] if not shutil.which(t) and not os.path.exists(f"/usr/sbin/{t}")]
    if not os.path.exists(DICOMWEB):
        missing.append(DICOMWEB)
    for module in ["pydicom", "aiohttp_tus"]:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise SystemExit(f"station_pacs: missing {', '.join(missing)}; run `make deps-test`")


def station_config(path, state, hub_url, token_file, key_file):
    with open(path, "w") as f:
        f.write(f"""[station]
id = "ps-pacs-test"
state_dir = "{state}"
[hub]
url = "{hub_url}"
{f'token_file = "{token_file}"' if token_file else ''}
[uplink]
backoff_max = "2s"
[spool]
key_file = "{key_file}"
[dicom]
enabled = true
institution = "Puesto de Salud Prueba"
""")


class Station:
    def __init__(self, bin_dir, config):
        self.bin = os.path.join(bin_dir, "telestation")
        self.config = config

    def run(self, *args, timeout=180):
        r = subprocess.run([self.bin, "--config", self.config, *args], capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def status(self):
        rc, out = self.run("status", "--json")
        if rc != 0:
            raise Failed(f"status --json exited {rc}: {out[-300:]}")
        return json.loads(out[out.index("{"):])

    def rows(self):
        """The queue's rows, read-only: what the spool recorded for each item."""
        import sqlite3
        state = open(self.config).read().split('state_dir = "')[1].split('"')[0]
        db = sqlite3.connect(f"file:{state}/queue.sqlite?mode=ro", uri=True)
        db.row_factory = sqlite3.Row
        rows = [dict(r) for r in db.execute("SELECT * FROM item ORDER BY id")]
        db.close()
        return rows


def dciodvfy_errors(path):
    r = subprocess.run(["dciodvfy", path], capture_output=True, text=True)
    return [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")]


def fragment(path):
    import pydicom
    from pydicom.encaps import generate_pixel_data_frame
    ds = pydicom.dcmread(path)
    frames = list(generate_pixel_data_frame(ds.PixelData, 1))
    return ds, frames[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=".build/debug")
    ap.add_argument("--results")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    need_tools()
    work = tempfile.mkdtemp(prefix="station-pacs-")
    problems, figures = [], {}
    started = time.monotonic()
    hub = orthanc = plain = None
    try:
        jpegs = make_jpegs(os.path.join(work, "jpeg"), 2, random.Random(2014), 240, 640)
        token = "station-pacs-" + os.urandom(8).hex()
        token_file = os.path.join(work, "token")
        with open(token_file, "w") as f:
            f.write(token + "\n")
        os.chmod(token_file, 0o600)
        key_file = os.path.join(work, "spool.key")
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32))
        os.close(fd)
        store, storage = os.path.join(work, "hub"), os.path.join(work, "orthanc")
        port = free_port()
        hub_log = os.path.join(work, "hub.log")
        hub_listen = f"127.0.0.1:{free_port()}"  # the same address after a restart, as a real hub
        hub = Hub(a.bin, store, token_file, f"http://127.0.0.1:{port}/dicom-web", hub_log, listen=hub_listen)
        config = os.path.join(work, "station.toml")
        station_config(config, os.path.join(work, "state"), hub.url, token_file, key_file)
        st = Station(a.bin, config)

        # 1. Queued for a DNI with its check character, sent while Orthanc is down.
        rc, out = st.run("enqueue", jpegs[0][0], "--case", f"{DNI}-{DNI_CHECK}", "--site", "arm_left",
                         "--image-type", "dermoscopic", "--patient-name", "MAMANI QUISPE^Rosa", "--sex", "F",
                         "--birth-date", "1972-03-14", "--note", "lesión pigmentada")
        if rc != 0:
            raise Failed(f"enqueue (dermoscopic) exited {rc}: {out}")
        rc, out = st.run("enqueue", jpegs[1][0], "--case", f"{DNI}-{DNI_CHECK}", "--site", "face", "--image-type", "clinical")
        if rc != 0:
            raise Failed(f"enqueue (clinical) exited {rc}: {out}")
        rc, out = st.run("enqueue", jpegs[1][0], "--case", f"{DNI}-3", "--site", "face")
        if rc == 0 or "check character" not in out:
            problems.append(f"a DNI with a wrong check character was not refused: exit {rc}: {out[-200:]}")
        rc, out = st.run("sync", "--deadline", "2m")
        s = st.status()
        log(f"sent with Orthanc down: counts {s['counts']}, awaiting_receipt {s['awaiting_receipt']}")
        if rc != 0 or s["counts"]["uploaded"] != 4 or s["awaiting_receipt"] != 2 or s["counts"]["received"] != 0:
            problems.append(f"after sync with Orthanc down: exit {rc}, counts {s['counts']}, awaiting {s['awaiting_receipt']}: {out[-300:]}")
        rc, text = st.run("status")
        if "2 sent, waiting for the hub's receipt" not in text:
            problems.append(f"status does not say the images wait for their receipt: {text[:300]}")
        images = [r for r in st.rows() if r["kind"] == "image"]
        dicoms = [n for n in os.listdir(store) if n.endswith(".dcm")]
        if len(dicoms) != 2:
            problems.append(f"the hub holds {len(dicoms)} DICOM files, expected 2: {sorted(os.listdir(store))}")

        # 2. The hub loses the clinical image after its last byte: the station sends it again.
        lost = images[1]
        lost_id = lost["upload_url"].rstrip("/").split("/")[-1]
        hub.stop()
        for name in os.listdir(store):
            if name.startswith(lost_id):
                os.remove(os.path.join(store, name))
        hub = Hub(a.bin, store, token_file, f"http://127.0.0.1:{port}/dicom-web", hub_log, listen=hub_listen)
        rc, out = st.run("sync", "--deadline", "2m")
        after = {r["id"]: r for r in st.rows()}
        again = after[lost["id"]]
        if "sending it again" not in out or again["upload_url"] == lost["upload_url"] or again["state"] != "uploaded":
            problems.append(f"the image the hub lost was not sent again: exit {rc}, {again['state']} {again['upload_url']}: {out[-400:]}")
        if after[images[0]["id"]]["upload_url"] != images[0]["upload_url"]:
            problems.append("the image the hub kept was sent again")
        log(f"the hub lost item {lost['id']}: sent again as {again['upload_url']}")

        # 3. Orthanc started: received only once Orthanc holds each image.
        s = st.status()
        if s["counts"]["received"] != 0:
            problems.append(f"received before Orthanc ran: {s['counts']}")
        orthanc = Orthanc(work, "station", storage, port)
        t0 = time.monotonic()
        rc, out = st.run("sync", "--deadline", "2m", "--wait-receipts", "90s")
        figures["received_after_orthanc_start_s"] = round(time.monotonic() - t0, 1)
        s = st.status()
        log(f"Orthanc up: sync --wait-receipts exit {rc} after {figures['received_after_orthanc_start_s']} s; counts {s['counts']}")
        if rc != 0 or s["counts"]["received"] != 2 or s["awaiting_receipt"] != 0:
            problems.append(f"after Orthanc started: exit {rc}, counts {s['counts']}: {out[-400:]}")
        instances = orthanc.get("/instances")
        if len(instances) != 2:
            problems.append(f"Orthanc holds {len(instances)} instances, expected exactly 2 (one per image, the resent one once)")
        want = {jpegs[0][1]: (DMS, "DMS", "arm_left"), jpegs[1][1]: (VL_PHOTO, "XC", "face")}
        studies = set()
        for oid in instances:
            tags = orthanc.get(f"/instances/{oid}/simplified-tags")
            path = os.path.join(work, f"{oid}.dcm")
            _, _, body = http("GET", f"{orthanc.url}/instances/{oid}/file")
            with open(path, "wb") as f:
                f.write(body)
            ds, frame = fragment(path)
            # A fragment has even length: an odd JPEG gets one 0x00 after its EOI.
            digest = hashlib.sha256(frame).hexdigest()
            if digest not in want and frame.endswith(b"\xff\xd9\x00"):
                digest = hashlib.sha256(frame[:-1]).hexdigest()
            if digest not in want:
                problems.append(f"instance {oid}: its JPEG is not byte-identical to either camera JPEG")
                continue
            sop_class, modality, site = want.pop(digest)
            studies.add(tags.get("StudyInstanceUID"))
            checks = [("PatientID", tags.get("PatientID"), DNI), ("SOPClassUID", tags.get("SOPClassUID"), sop_class),
                      ("Modality", tags.get("Modality"), modality),
                      ("InstitutionName", tags.get("InstitutionName"), "Puesto de Salud Prueba")]
            if modality == "DMS":
                checks += [("PatientName", tags.get("PatientName"), "MAMANI QUISPE^Rosa"),
                           ("PatientSex", tags.get("PatientSex"), "F"), ("PatientBirthDate", tags.get("PatientBirthDate"), "19720314")]
            region = ds.get("AnatomicRegionSequence")
            code = region[0].CodeValue if region else None
            lat = ds.get("ImageLaterality")
            checks += [("site", code is not None, True), ("ImageLaterality", lat, "L" if site == "arm_left" else "U")]
            for name, got, expected in checks:
                if got != expected:
                    problems.append(f"instance {oid} ({modality}): {name} is {got!r}, expected {expected!r}")
            errors = dciodvfy_errors(path)
            if errors:
                problems.append(f"instance {oid} ({modality}): dciodvfy: {errors[:3]}")
            figures.setdefault("instances", []).append({"modality": modality, "site_code": code, "laterality": lat,
                                                        "dciodvfy_errors": len(errors), "bytes": len(body)})
        if want:
            problems.append(f"camera JPEGs not found in Orthanc: {list(want)}")
        if len(studies) != 1:
            problems.append(f"one case should be one study; Orthanc has {len(studies)}")

        # 3b. Orthanc refusing (its filter drops every instance while STOW-RS
        # answers "stored"): a new image is sent, never received; accepted again: received.
        orthanc.stop()
        orthanc = Orthanc(work, "station-refusing", storage, port, refuse=True)
        rc, out = st.run("enqueue", jpegs[0][0], "--case", "HC-004512", "--site", "back")
        if rc != 0:
            raise Failed(f"enqueue (third image) exited {rc}: {out}")
        rc, out = st.run("sync", "--deadline", "2m", "--wait-receipts", "8s")
        s = st.status()
        if rc != 75 or s["counts"]["received"] != 2 or s["awaiting_receipt"] != 1:
            problems.append(f"Orthanc refusing: exit {rc} (75 expected: a receipt missing), counts {s['counts']}, "
                            f"awaiting {s['awaiting_receipt']}: {out[-300:]}")
        log(f"Orthanc refusing: sync --wait-receipts 8s exit {rc}; counts {s['counts']}, awaiting {s['awaiting_receipt']}")
        orthanc.stop()
        orthanc = Orthanc(work, "station", storage, port)
        rc, out = st.run("sync", "--deadline", "2m", "--wait-receipts", "90s")
        s = st.status()
        if rc != 0 or s["counts"]["received"] != 3 or s["awaiting_receipt"] != 0 or len(orthanc.get("/instances")) != 3:
            problems.append(f"Orthanc accepting again: exit {rc}, counts {s['counts']}, "
                            f"{len(orthanc.get('/instances'))} instances in Orthanc: {out[-300:]}")
        figures["received_after_refusal"] = s["counts"]["received"]

        # 4. A plain tus server: delivered, "sent, no receipt".
        plain = subprocess.Popen([sys.executable, os.path.join(SUPPORT, "aiohttp_tus_server.py"), os.path.join(work, "plain")],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = plain.stdout.readline()
        m = re.match(r"READY (\d+)", line)
        if not m:
            raise Failed(f"aiohttp-tus did not start: {line!r}")
        plain_config = os.path.join(work, "plain.toml")
        station_config(plain_config, os.path.join(work, "state-plain"), f"http://127.0.0.1:{m.group(1)}/uploads", None, key_file)
        ps = Station(a.bin, plain_config)
        rc1, out1 = ps.run("enqueue", jpegs[0][0], "--case", DNI, "--site", "back")
        rc, out = ps.run("sync", "--deadline", "2m")
        s = ps.status()
        rc2, text = ps.run("status")
        stored = [n for n in os.listdir(os.path.join(work, "plain")) if n.endswith(".dcm")]
        if rc1 or rc or s["counts"]["uploaded"] != 2 or s["awaiting_receipt"] != 0 or "no receipt" not in text or len(stored) != 1:
            problems.append(f"plain tus server: exit {rc1}/{rc}, counts {s['counts']}, awaiting {s['awaiting_receipt']}, "
                            f"files {stored}: {text[:200]} {out[-200:]}")
        log(f"plain tus (aiohttp-tus): counts {s['counts']}, status says: {text.splitlines()[1] if len(text.splitlines()) > 1 else text}")
        figures["duration_s"] = round(time.monotonic() - started, 1)
    except Failed as e:
        problems.append(str(e))
    finally:
        for p in (hub, orthanc):
            if p:
                p.stop()
        if plain:
            plain.terminate()
            plain.wait()
    verdict = "FAIL" if problems else "PASS"
    log(f"station_pacs: {verdict} in {time.monotonic() - started:.0f} s {json.dumps(figures)}")
    for p in problems:
        log(f"  problem: {p}")
    if a.results:
        write_results(a.results, dict(figures, verdict=verdict, problems=problems[:10]))
    if a.keep or problems:
        log(f"  kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
