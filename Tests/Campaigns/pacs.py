#!/usr/bin/env python3
"""The hub files DICOM uploads in a real PACS: telestation-hub with
--stow-url in front of Orthanc (Debian's orthanc and orthanc-dicomweb),
both started here on loopback with their own configuration and storage.

    pacs.py --bin .build/debug [--artifacts .build/artifacts] [--only sqlite|postgresql]

Two runs, each with a fresh hub store and a fresh Orthanc:
  sqlite      Orthanc's default index. DICOM files made by dcmtk's img2dcm
              from JPEGs go up over tus while Orthanc is stopped: the uploads
              complete, receipts stay 202, the hub logs the failures and its
              /status shows them; the hub is restarted (it resumes), then
              Orthanc started: every receipt turns 200 "pacs", each only once
              Orthanc holds the instance, each instance once. Then Orthanc
              refusing (a Lua ReceivedInstanceFilter that drops everything,
              while its STOW-RS still answers "stored"): receipts stay 202;
              Orthanc restarted accepting: filed. A screenshot of a study in
              Orthanc Explorer under headless Chromium is saved.
  postgresql  the reference deployment at scale: Orthanc with its PostgreSQL
              index and storage (orthanc-postgresql) on a PostgreSQL 15
              cluster made here (initdb, pg_ctl, as the postgres user when
              run as root); the same checks, and the instances are in
              PostgreSQL's tables.
Every check is against Orthanc's own REST API (/instances, simplified-tags,
/studies) and the hub's receipts. A missing tool fails: run `make deps-test`.
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from campaign import LineReader, free_port, log, make_jpegs, sha256_file, write_results  # noqa: E402

import random  # noqa: E402

PG_BIN = "/usr/lib/postgresql/15/bin"
DICOMWEB = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
PG_INDEX = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"
PG_STORAGE = "/usr/share/orthanc/plugins/libOrthancPostgreSQLStorage.so"
VL_PHOTO = "1.2.840.10008.5.1.4.1.1.77.1.4"       # img2dcm -vlp
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"   # img2dcm's default
UID_ROOT = "1.2.826.0.1.3680043.10.1418"          # test objects only


class Failed(Exception):
    pass


def need_tools(postgres):
    missing = []
    for tool in ["Orthanc", "img2dcm", "dcmdump", "cjpeg", "chromium", "chromedriver"]:
        if not shutil.which(tool) and not os.path.exists(f"/usr/bin/{tool}") and not os.path.exists(f"/usr/sbin/{tool}"):
            missing.append(tool)
    files = [DICOMWEB] + ([PG_INDEX, PG_STORAGE, f"{PG_BIN}/initdb", f"{PG_BIN}/pg_ctl", f"{PG_BIN}/psql"] if postgres else [])
    missing += [f for f in files if not os.path.exists(f)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    if missing:
        raise SystemExit(f"pacs: missing {', '.join(missing)}; run `make deps-test` (it installs orthanc, "
                         "orthanc-dicomweb, orthanc-postgresql, dcmtk, postgresql, chromium, chromium-driver)")


# --- HTTP helpers -----------------------------------------------------------

def http(method, url, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def tus_upload(creation_url, path, metadata, token):
    """A plain tus 1.0 upload: POST, then the bytes in two PATCHes. Returns the upload URL."""
    data = open(path, "rb").read()
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    status, headers, body = http("POST", creation_url, b"", {**auth, "Upload-Length": str(len(data)),
                                                              "Upload-Metadata": meta})
    if status != 201:
        raise Failed(f"tus POST answered {status}: {body[:200]!r}")
    location = headers.get("Location") or headers.get("location")
    url = urllib.parse.urljoin(creation_url, location)
    half = len(data) // 2
    for offset, chunk in [(0, data[:half]), (half, data[half:])]:
        status, headers, body = http("PATCH", url, chunk, {**auth, "Upload-Offset": str(offset),
                                                          "Content-Type": "application/offset+octet-stream"})
        if status != 204:
            raise Failed(f"tus PATCH at {offset} answered {status}: {body[:200]!r}")
    return url


def receipt(upload_url, token):
    status, _, body = http("GET", upload_url + "/receipt", headers={"Authorization": f"Bearer {token}"})
    try:
        return status, json.loads(body)
    except json.JSONDecodeError:
        return status, {"raw": body.decode("utf-8", "replace")}


def wait_until(what, predicate, timeout, step=0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Failed(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


# --- the programs -------------------------------------------------------------

class Orthanc:
    """Orthanc on a free loopback port with its own JSON configuration."""

    def __init__(self, work, name, storage, port, *, refuse=False, postgres=None, user=None):
        self.port = port
        # With a user, Orthanc asks HTTP basic auth of everyone, the hub included.
        self.auth = {"Authorization": "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode()} if user else {}
        self.url = f"http://127.0.0.1:{port}"
        config = {
            "Name": name,
            "StorageDirectory": storage,
            "IndexDirectory": storage,
            "HttpPort": port,
            "HttpServerEnabled": True,
            "DicomServerEnabled": False,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(user),
            "RegisteredUsers": {user[0]: user[1]} if user else {},
            "HttpsCACertificates": "",
            "Plugins": [DICOMWEB] + ([PG_INDEX, PG_STORAGE] if postgres else []),
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
        }
        if refuse:
            script = os.path.join(work, "refuse.lua")
            with open(script, "w") as f:
                f.write("function ReceivedInstanceFilter(dicom, origin, info)\n  return false\nend\n")
            config["LuaScripts"] = [script]
        if postgres:
            config["PostgreSQL"] = {"EnableIndex": True, "EnableStorage": True, "Host": "127.0.0.1",
                                    "Port": postgres.port, "Database": "orthanc", "Username": postgres.user,
                                    "Password": "", "EnableSsl": False, "Lock": False}
        self.config = os.path.join(work, f"orthanc-{name}.json")
        with open(self.config, "w") as f:
            json.dump(config, f, indent=2)
        self.log = open(os.path.join(work, f"orthanc-{name}.log"), "a")
        self.proc = subprocess.Popen(["Orthanc", self.config], stdout=self.log, stderr=subprocess.STDOUT)
        try:
            wait_until("Orthanc to answer", lambda: self.proc.poll() is None and self.alive() or self.proc.poll() is not None, 60)
        except Failed:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise Failed(f"Orthanc exited with {self.proc.returncode}; see {self.log.name}")

    def alive(self):
        try:
            return http("GET", self.url + "/system", headers=self.auth, timeout=2)[0] == 200
        except OSError:
            return False

    def get(self, path):
        status, _, body = http("GET", self.url + path, headers=self.auth)
        if status != 200:
            raise Failed(f"Orthanc GET {path} answered {status}")
        return json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Postgres:
    """A PostgreSQL 15 cluster in a temporary directory, on a free loopback
    port, as the postgres user when run as root (initdb refuses root)."""

    def __init__(self, work):
        self.dir = os.path.join(work, "pg")
        os.makedirs(self.dir)
        self.user = "postgres"
        self.port = free_port()
        self.as_user = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        else:
            import getpass
            self.user = getpass.getuser()
        data = os.path.join(self.dir, "data")
        self.run([f"{PG_BIN}/initdb", "-D", data, "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync"])
        self.run([f"{PG_BIN}/pg_ctl", "-D", data, "-l", os.path.join(self.dir, "server.log"), "-w", "-t", "60",
                  "-o", f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} -c fsync=off",
                  "start"])
        self.data = data
        self.psql("CREATE DATABASE orthanc", db="postgres")

    def run(self, args):
        r = subprocess.run(self.as_user + args, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise Failed(f"{' '.join(args[:2])} failed: {r.stdout[-500:]} {r.stderr[-500:]}")
        return r.stdout

    def psql(self, sql, db="orthanc"):
        return self.run([f"{PG_BIN}/psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", db,
                         "-v", "ON_ERROR_STOP=1", "-Atc", sql]).strip()

    def stop(self):
        try:
            self.run([f"{PG_BIN}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop"])
        except (Failed, AttributeError) as e:
            log(f"pg_ctl stop: {e}")


class Hub:
    """telestation-hub with --stow-url, its log kept in a file."""

    def __init__(self, bin_dir, store, token_file, stow_url, log_path, user=None, listen="127.0.0.1:0"):
        self.log_path = log_path
        self.log_file = open(log_path, "a")
        args = [os.path.join(bin_dir, "telestation-hub"), "--listen", listen, "--store", store,
                "--token-file", token_file, "--stow-url", stow_url, "--stow-retry-max", "2"]
        if user:
            args += ["--stow-user", user[0], "--stow-password-file", user[1]]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = LineReader(self.proc.stdout, self.log_file)
        self.err = LineReader(self.proc.stderr, self.log_file)
        m = self.out.wait_for(r"listening on (http://127\.0\.0\.1:\d+/files/),", 60)
        if not m:
            self.stop()
            raise Failed(f"telestation-hub did not start; see {log_path}")
        self.url = m.group(1)
        self.root = self.url[: -len("/files/")]

    def warnings(self):
        with self.err.cond:
            return [line for line in self.err.lines if line and line.startswith("<4>")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


# --- test objects ---------------------------------------------------------------

def make_dicoms(work, jpegs, case, study_uid, first):
    """One DICOM object per JPEG, JPEG encapsulated unchanged by img2dcm:
    alternately VL Photographic and Secondary Capture, one study per case."""
    out = []
    for n, (jpg, _) in enumerate(jpegs):
        sop = f"{study_uid}.{first + n}"
        path = os.path.join(work, f"{case}-{n}.dcm")
        sop_class_flag = ["-vlp"] if (first + n) % 2 == 0 else []
        subprocess.run(["img2dcm", *sop_class_flag, "-k", f"PatientID={case}", "-k", "PatientName=PRUEBA^PACS",
                        "-k", f"StudyInstanceUID={study_uid}", "-k", f"SOPInstanceUID={sop}",
                        # One series per SOP class, as the station makes one per device and image type.
                        "-k", f"SeriesInstanceUID={study_uid}.{1 if sop_class_flag else 2}",
                        "-k", f"Modality={'XC' if sop_class_flag else 'OT'}",
                        "-k", "StudyDescription=Telestation PACS test", jpg, path], check=True)
        dump = subprocess.run(["dcmdump", "+P", "TransferSyntaxUID", path], capture_output=True, text=True, check=True).stdout
        if "JPEGBaseline" not in dump and "1.2.840.10008.1.2.4.50" not in dump:
            raise Failed(f"img2dcm did not keep the JPEG as JPEG Baseline: {dump}")
        out.append({"path": path, "case": case, "study": study_uid, "sop": sop,
                    "sop_class": VL_PHOTO if sop_class_flag else SECONDARY_CAPTURE, "sha256": sha256_file(path)})
    return out


def upload_all(hub, token, objects):
    for o in objects:
        o["url"] = tus_upload(hub.url, o["path"], {"filename": os.path.basename(o["path"]), "filetype": "application/dicom",
                                                   "sha256": o["sha256"], "case": o["case"], "study_uid": o["study"],
                                                   "sop_instance_uid": o["sop"]}, token)


def orthanc_instances(orthanc):
    """SOP Instance UID -> simplified tags, for every instance Orthanc holds."""
    out = {}
    for oid in orthanc.get("/instances"):
        tags = orthanc.get(f"/instances/{oid}/simplified-tags")
        out.setdefault(tags.get("SOPInstanceUID"), []).append(tags)
    return out


def check_in_orthanc(orthanc, objects, problems):
    held = orthanc_instances(orthanc)
    for o in objects:
        copies = held.get(o["sop"], [])
        if len(copies) != 1:
            problems.append(f"{o['sop']}: Orthanc holds {len(copies)} copies")
            continue
        tags = copies[0]
        for key, want in [("PatientID", o["case"]), ("StudyInstanceUID", o["study"]), ("SOPClassUID", o["sop_class"])]:
            if tags.get(key) != want:
                problems.append(f"{o['sop']}: {key} is {tags.get(key)!r} in Orthanc, the file says {want!r}")
    studies = {orthanc.get(f"/studies/{s}")["MainDicomTags"]["StudyInstanceUID"] for s in orthanc.get("/studies")}
    want = {o["study"] for o in objects}
    if not want <= studies:
        problems.append(f"studies missing in Orthanc: {sorted(want - studies)}")
    return held


def wait_filed(objects, token, orthanc, timeout, problems):
    """Polls every receipt until 200 "pacs"; the moment one turns, Orthanc must hold the instance."""
    pending = {o["sop"]: o for o in objects}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for sop, o in list(pending.items()):
            status, body = receipt(o["url"], token)
            if status == 200:
                if body.get("state") != "filed" or body.get("where") != "pacs":
                    problems.append(f"{sop}: receipt 200 but {body}")
                if body.get("sop_instance_uid") != sop or body.get("study_uid") != o["study"] or body.get("sha256") != o["sha256"]:
                    problems.append(f"{sop}: receipt names the wrong object: {body}")
                if not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", body.get("filed_at", "")):
                    problems.append(f"{sop}: filed_at {body.get('filed_at')!r} is not ISO 8601")
                # Received only once Orthanc holds it.
                status_q, _, answer = http("POST", orthanc.url + "/tools/lookup", sop.encode(), orthanc.auth)
                if status_q != 200 or not [r for r in json.loads(answer) if r.get("Type") == "Instance"]:
                    problems.append(f"{sop}: receipt said filed but Orthanc does not hold the instance")
                o["filed_at"] = body.get("filed_at")
                del pending[sop]
            elif status != 202:
                problems.append(f"{sop}: receipt {status} {body} while waiting for filing")
                del pending[sop]
        time.sleep(0.3)
    for sop in pending:
        problems.append(f"{sop}: not filed within {timeout} s: {receipt(pending[sop]['url'], token)}")


def expect_pending(objects, token, detail_pattern, problems, what):
    for o in objects:
        status, body = receipt(o["url"], token)
        if status != 202 or body.get("state") != "pending" or not re.search(detail_pattern, body.get("detail", "")):
            problems.append(f"{what}: {o['sop']}: expected 202 pending matching /{detail_pattern}/, got {status} {body}")


def hub_status(hub, token):
    status, _, body = http("GET", hub.root + "/status", headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        raise Failed(f"GET /status answered {status}")
    return json.loads(body)


# --- the screenshot -----------------------------------------------------------------

def png_pixels(path):
    """(width, height, rows of RGB(A) tuples) from an 8-bit RGB/RGBA PNG, decoded here (no PIL in Debian's base)."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise Failed(f"{path} is not a PNG")
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = int.from_bytes(chunk[0:4], "big"), int.from_bytes(chunk[4:8], "big")
            depth, color = chunk[8], chunk[9]
            if depth != 8 or color not in (2, 6):
                raise Failed(f"{path}: unexpected PNG format (depth {depth}, color type {color})")
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, channels


def screenshot(orthanc, study_uid, case, path, problems):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    studies = [s for s in orthanc.get("/studies")
               if orthanc.get(f"/studies/{s}")["MainDicomTags"]["StudyInstanceUID"] == study_uid]
    if not studies:
        problems.append(f"no Orthanc study for {study_uid}: no screenshot")
        return
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900",
              "--hide-scrollbars"]:
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    try:
        driver.set_page_load_timeout(60)
        driver.get(f"{orthanc.url}/app/explorer.html#study?uuid={studies[0]}")
        # Orthanc Explorer fills the page from its REST API after load.
        try:
            wait_until("Orthanc Explorer to show the study", lambda: case in driver.find_element("tag name", "body").text
                       and "Telestation PACS test" in driver.find_element("tag name", "body").text, 60, 0.5)
        except Failed as e:
            problems.append(f"{e}; the page shows: {driver.find_element('tag name', 'body').text[:300]!r}")
        time.sleep(1)  # the series list fades in
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        driver.save_screenshot(path)
    finally:
        driver.quit()
    width, height, rows, channels = png_pixels(path)
    colours, background, other = set(), rows[0][:3], 0
    for row in rows[::4]:
        for x in range(0, width * channels, channels * 4):
            px = row[x:x + 3]
            colours.add(px)
            other += px != background
    sampled = (height // 4 + 1) * (width // 4 + 1)
    log(f"screenshot {path}: {width}x{height}, {len(colours)} colours in the sample, {100 * other / sampled:.0f} % not background")
    if width < 800 or height < 600 or len(colours) < 16 or other < sampled * 0.02:
        problems.append(f"the screenshot {path} looks empty ({width}x{height}, {len(colours)} colours)")


# --- the runs ----------------------------------------------------------------------

def run(backend, a, work, jpegs, problems, figures):
    token = "pacs-test-" + os.urandom(8).hex()
    token_file = os.path.join(work, "token")
    with open(token_file, "w") as f:
        f.write(token + "\n")
    os.chmod(token_file, 0o600)
    store = os.path.join(work, "hub")
    storage = os.path.join(work, "orthanc-storage")
    port = free_port()
    stow_url = f"http://127.0.0.1:{port}/dicom-web"
    postgres = Postgres(work) if backend == "postgresql" else None
    # The deployment at scale has Orthanc ask for a password; the hub sends it from a file.
    pacs_user, hub_user = None, None
    if postgres:
        pacs_user = ("telestation-hub", os.urandom(12).hex())
        password_file = os.path.join(work, "pacs-password")
        with open(password_file, "w") as f:
            f.write(pacs_user[1] + "\n")
        os.chmod(password_file, 0o600)
        hub_user = (pacs_user[0], password_file)
    orthanc = hub = None
    hub_log = os.path.join(work, "hub.log")
    try:
        started = time.monotonic()
        rng = random.Random(14)
        case_a, case_b = f"4{rng.randrange(10**7):07d}", f"HC-{rng.randrange(10**6):06d}"
        study_a = f"{UID_ROOT}.{rng.randrange(10**9)}"
        study_b = f"{UID_ROOT}.{rng.randrange(10**9)}"
        first = make_dicoms(work, jpegs[:3], case_a, study_a, 1)
        second = make_dicoms(work, jpegs[3:5], case_b, study_b, 1)
        if backend == "postgresql":
            # At scale: a backlog waits through the outage too, from another post's case.
            case_c, study_c = f"CE{rng.randrange(10**9):09d}", f"{UID_ROOT}.{rng.randrange(10**9)}"
            first += make_dicoms(work, (jpegs * 10)[:a.backlog], case_c, study_c, 1)
        n = len(first)
        outage_start = time.monotonic()

        # Orthanc stopped: the uploads complete, the receipts stay pending.
        hub = Hub(a.bin, store, token_file, stow_url, hub_log, hub_user)
        upload_all(hub, token, first)
        jpeg_url = tus_upload(hub.url, jpegs[5][0], {"filename": "preview.jpg", "filetype": "image/jpeg"}, token)
        not_dicom = os.path.join(work, "not.dcm")
        with open(not_dicom, "wb") as f:
            f.write(open(jpegs[5][0], "rb").read())
        bad_url = tus_upload(hub.url, not_dicom, {"filename": "not.dcm", "filetype": "application/dicom"}, token)
        wait_until("the hub to log a PACS failure", lambda: [w for w in hub.warnings() if "the PACS has not filed" in w], 30)
        time.sleep(5)  # a few retries
        expect_pending(first, token, r"not yet filed in the PACS: cannot reach the PACS at " + re.escape(stow_url), problems,
                       "Orthanc stopped")
        status, body = receipt(jpeg_url, token)
        if status != 200 or body.get("where") != "hub":
            problems.append(f"a JPEG (not DICOM) receipt: {status} {body}, expected 200 where=hub")
        status, body = receipt(bad_url, token)
        if status != 409 or body.get("state") != "rejected" or "DICM" not in body.get("detail", ""):
            problems.append(f"a non-DICOM file sent as application/dicom: {status} {body}, expected 409 rejected")
        status, _, _ = http("GET", urllib.parse.urljoin(hub.url, "/files/" + "0" * 32 + "/receipt"),
                            headers={"Authorization": f"Bearer {token}"})
        if status != 404:
            problems.append(f"an unknown upload's receipt answered {status}, expected 404")
        warnings = [w for w in hub.warnings() if "the PACS has not filed" in w]
        if not warnings or not re.search(r"next_try=\d{4}-", warnings[-1]) or "cannot reach the PACS" not in warnings[-1]:
            problems.append(f"the hub's log does not show the failure with its reason and next try: {warnings[-1:]}")
        st = hub_status(hub, token)
        log(f"[{backend}] Orthanc stopped: {len(warnings)} warnings in the hub's log; /status {st}")
        if st.get("pending_pacs") != n or st.get("filed") != 0 or st.get("rejected") != 1 or not st.get("last_pacs_error"):
            problems.append(f"/status with Orthanc stopped: {st}")
        outage_requests = len(warnings)

        # The hub restarted before Orthanc comes back: it resumes from its store.
        hub.stop()
        old_root = hub.root
        hub = Hub(a.bin, store, token_file, stow_url, hub_log, hub_user)
        for o in first:  # a new port: the same upload paths
            o["url"] = hub.root + o["url"][len(old_root):]
        if not hub.err.wait_for(rf"resuming PACS filing.* uploads={n}\b", 30):
            problems.append(f"the restarted hub did not say it resumes {n} uploads")
        if not hub.err.wait_for(r"the PACS has not filed an upload", 30):
            problems.append("the restarted hub did not try the PACS again")
        expect_pending(first, token, r"cannot reach the PACS", problems, "after the hub's restart")

        # One request per backoff window while the PACS is down, not one per upload.
        outage_requests += len([w for w in hub.warnings() if "the PACS has not filed" in w])
        figures["outage_s"] = round(time.monotonic() - outage_start, 1)
        figures["outage_requests"] = outage_requests
        figures["uploads_waiting"] = n
        if n > 10 and outage_requests >= n:
            problems.append(f"{outage_requests} STOW-RS requests for {n} uploads during the outage: one per upload, not one per window")
        orthanc = Orthanc(work, backend, storage, port, postgres=postgres, user=pacs_user)
        if pacs_user and http("GET", orthanc.url + "/dicom-web/studies")[0] != 401:
            problems.append("Orthanc answers without the password: the hub's basic auth is not being tested")
        t0 = time.monotonic()
        wait_filed(first, token, orthanc, 60, problems)
        figures["filed_after_orthanc_start_s"] = round(time.monotonic() - t0, 1)
        held = check_in_orthanc(orthanc, first, problems)
        if len(orthanc.get("/instances")) != n:
            problems.append(f"Orthanc holds {len(orthanc.get('/instances'))} instances, expected exactly {n} (once each)")
        log(f"[{backend}] Orthanc started after {figures['outage_s']} s ({outage_requests} tries while it was down): "
            f"{n} of {n} filed in {figures['filed_after_orthanc_start_s']} s, {len(held)} instances in Orthanc")
        st = hub_status(hub, token)
        if st.get("filed") != n or st.get("pending_pacs") != 0:
            problems.append(f"/status after filing: {st}")

        if backend == "sqlite":
            # Orthanc refusing: its filter drops every instance but STOW-RS says stored.
            orthanc.stop()
            orthanc = Orthanc(work, backend + "-refusing", storage, port, refuse=True)
            upload_all(hub, token, second)
            # Several tries' worth: no receipt may say filed meanwhile.
            until = time.monotonic() + 6
            while time.monotonic() < until:
                for o in second:
                    status, body = receipt(o["url"], token)
                    if status != 202:
                        problems.append(f"Orthanc refusing: {o['sop']}: receipt {status} {body} although Orthanc "
                                        f"holds {len(orthanc_instances(orthanc).get(o['sop'], []))} copies")
                        until = 0
                time.sleep(0.3)
            if not [w for w in hub.warnings() if "QIDO-RS does not find it" in w]:
                problems.append("Orthanc refusing: the hub's log shows no refusal")
            expect_pending(second, token, r"QIDO-RS does not find it", problems, "Orthanc refusing")
            if set(orthanc_instances(orthanc)) & {o["sop"] for o in second}:
                problems.append("the refusing Orthanc holds an instance it should have dropped")
            refusals = len([w for w in hub.warnings() if "QIDO-RS does not find it" in w])
            still = len([o for o in second if receipt(o["url"], token)[0] == 202])
            log(f"[{backend}] Orthanc refusing: {still} of 2 receipts pending, {refusals} refusals logged")
            orthanc.stop()
            orthanc = Orthanc(work, backend, storage, port)
            wait_filed(second, token, orthanc, 60, problems)
            check_in_orthanc(orthanc, first + second, problems)
            total = len(orthanc.get("/instances"))
            if total != 5:
                problems.append(f"Orthanc holds {total} instances, expected exactly 5")
            log(f"[{backend}] Orthanc accepting again: 2 of 2 filed; {total} instances in Orthanc")
            figures["refused_retries"] = refusals
            shot = os.path.join(a.artifacts, "orthanc-study.png")
            screenshot(orthanc, study_a, case_a, shot, problems)
            figures["screenshot"] = shot
        else:
            rows = postgres.psql("SELECT count(*) FROM resources WHERE resourcetype = 3")
            log(f"[{backend}] PostgreSQL index: {rows} instance rows")
            if rows != str(n):
                problems.append(f"PostgreSQL's Orthanc index has {rows} instance rows, expected {n}")
            blobs = postgres.psql("SELECT count(*) FROM storagearea")
            if int(blobs) < n:
                problems.append(f"PostgreSQL's storage area holds {blobs} files, expected at least {n}")
            figures["postgres_instance_rows"] = int(rows)
        figures["duration_s"] = round(time.monotonic() - started, 1)
    finally:
        if hub:
            hub.stop()
        if orthanc:
            orthanc.stop()
        if postgres:
            postgres.stop()
        if problems:
            log(f"--- hub log ({hub_log}), last lines:")
            with open(hub_log) as f:
                for line in f.readlines()[-15:]:
                    log("  " + line.rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=".build/debug")
    ap.add_argument("--artifacts", default=".build/artifacts")
    ap.add_argument("--only", choices=["sqlite", "postgresql"])
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--backlog", type=int, default=30, help="extra uploads waiting through the outage in the PostgreSQL run")
    ap.add_argument("--results", help="write the figures (with the commit) to this JSON file")
    a = ap.parse_args()
    backends = [a.only] if a.only else ["sqlite", "postgresql"]
    need_tools("postgresql" in backends)
    if not os.access(os.path.join(a.bin, "telestation-hub"), os.X_OK):
        raise SystemExit(f"pacs: {a.bin}/telestation-hub is missing; run `make build`")
    failed = False
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "runs": {}}
    for backend in backends:
        work = tempfile.mkdtemp(prefix=f"pacs-{backend}-")
        os.chmod(work, 0o755)  # the postgres user needs to reach its directory
        problems, figures = [], {}
        t = time.monotonic()
        try:
            jpegs = make_jpegs(os.path.join(work, "jpeg"), 6, random.Random(1418), 160, 480)
            run(backend, a, work, jpegs, problems, figures)
        except Failed as e:
            problems.append(str(e))
        verdict = "FAIL" if problems else "PASS"
        log(f"pacs [{backend}]: {verdict} in {time.monotonic() - t:.0f} s {json.dumps(figures)}")
        for p in problems:
            log(f"  problem: {p}")
        failed |= bool(problems)
        results["runs"][backend] = dict(figures, verdict=verdict, problems=problems[:10],
                                        total_s=round(time.monotonic() - t, 1))
        if a.keep or problems:
            log(f"  kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if a.results:
        write_results(a.results, results)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
