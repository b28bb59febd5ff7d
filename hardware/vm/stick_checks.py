#!/usr/bin/env python3
"""Runs inside the VM (see inside-vm.sh): a health post offline for days,
its queue carried to the hub on a USB stick and its receipts carried back.

The stick is a FAT filesystem image served by a USB mass-storage gadget
(dummy_hcd + the configfs mass-storage function, Debian's kernel), so the station's kernel sees
a USB disk appear and vanish, as with a real stick; the hub's side mounts
the same image through a loop device.

1. The station reaches the hub once (learns its keys; the hub learns the
   station's signing key from the upload); then the hub goes away.
2. Twenty images are queued offline (forty items with their previews).
3. The stick is plugged in: the running daemon sees the mount, the kiosk
   API offers the export. The stick is pulled (the gadget unbound) while
   the daemon writes: the export fails with an I/O error, nothing in the
   queue changes, and what is left on the stick is refused or skipped by
   the hub, never half-imported.
4. Plugged in again and exported through the kiosk API: the whole queue.
5. At the hub: imported once (every image byte-identical, once); the same
   stick again imports nothing; a flipped byte, a swapped file and a bundle
   for another hub are refused with their reasons.
6. Back at the station: plugging the stick in marks every item received
   from the hub's signed receipts; when the link returns, nothing is sent
   again (no upload is created at the hub).
7. The hub revokes the station's credential: `telestation diagnose` says so
   and what to do.

usage: stick_checks.py TELESTATION TELESTATION_HUB OUTDIR
Prints one "PASS text" or "FAIL text" line per check.
"""
import glob
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "Campaigns"))
from campaign import Daemon, Hub, make_jpegs, write_config  # noqa: E402

BIN, HUB_BIN, OUT = (sys.argv[1:4] + [""] * 3)[:3]
BIN_DIR = os.path.dirname(BIN)
WORK = "/tmp/stick-checks"            # the guest's own /tmp: SQLite needs real locks
STICK_IMG = WORK + "/stick.img"
MOUNT = "/media/telestation-usb"      # where the package's udev rule mounts sticks
HUB_MOUNT = WORK + "/hub-side"
HUB_STORE = WORK + "/hub"
STATION = "ps-stick"
HUB_PORT = 18990
KIOSK_PORT = 8093
KIOSK = f"http://127.0.0.1:{KIOSK_PORT}"
IMAGES = 20


def verdict(ok, text):
    print(("PASS " if ok else "FAIL ") + text, flush=True)
    return ok


def sh(*args, check=True, timeout=120):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {r.returncode}: {(r.stdout + r.stderr).strip()[-400:]}")
    return r


def api(method, path, timeout=300):
    req = urllib.request.Request(KIOSK + path, data=b"" if method == "POST" else None, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def wait(cond, timeout, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def usb_disks():
    """Block devices on a USB bus (the gadget seen through dummy_hcd)."""
    return sorted(os.path.basename(p) for p in glob.glob("/sys/block/sd*")
                  if "/usb" in os.path.realpath(p))


GADGET = "/sys/kernel/config/usb_gadget/telestation-stick"


def make_gadget():
    """A USB mass-storage gadget through configfs (Debian's kernel builds the
    mass-storage function, usb_f_mass_storage, but not the legacy
    g_mass_storage module), bound to dummy_hcd's UDC when plugged in."""
    if not os.path.ismount("/sys/kernel/config"):
        sh("mount", "-t", "configfs", "none", "/sys/kernel/config")
    os.makedirs(GADGET + "/strings/0x409")
    os.makedirs(GADGET + "/configs/c.1/strings/0x409")
    os.makedirs(GADGET + "/functions/mass_storage.0")
    for path, value in [("idVendor", "0x1d6b"), ("idProduct", "0x0104"), ("strings/0x409/serialnumber", "TS0001"),
                        ("strings/0x409/manufacturer", "Telestation"), ("strings/0x409/product", "Test stick"),
                        ("configs/c.1/strings/0x409/configuration", "mass storage"),
                        ("functions/mass_storage.0/lun.0/removable", "1"),
                        ("functions/mass_storage.0/lun.0/file", STICK_IMG)]:
        with open(os.path.join(GADGET, path), "w") as f:
            f.write(value)
    os.symlink(GADGET + "/functions/mass_storage.0", GADGET + "/configs/c.1/mass_storage.0")


def plug():
    """Binds the gadget to the dummy UDC: the station's kernel sees a USB disk
    appear. Returns its device node."""
    before = set(usb_disks())
    udc = sorted(os.listdir("/sys/class/udc"))[0]
    with open(GADGET + "/UDC", "w") as f:
        f.write(udc)
    disk = wait(lambda: (set(usb_disks()) - before) and sorted(set(usb_disks()) - before)[0], 60)
    if not disk:
        raise RuntimeError("the gadget was loaded but no USB disk appeared")
    node = "/dev/" + disk
    wait(lambda: os.path.exists(node), 30)
    return node


def mount_stick(node):
    # Repairs what a pull left behind, as a desktop's automounter would.
    r = subprocess.run(["fsck.vfat", "-a", "-w", node], capture_output=True, text=True)
    with open(OUT + "/stick-fsck.log", "a") as f:
        f.write(f"fsck.vfat -a -w {node}: exit {r.returncode}\n{r.stdout}{r.stderr}\n")
    sh("mount", "-t", "vfat", "-o", "flush", node, MOUNT)


def kernel_log(lines=12):
    """The kernel's last words, for a failure that names an I/O error."""
    r = subprocess.run(["dmesg"], capture_output=True, text=True)
    with open(OUT + "/stick-dmesg.txt", "w") as f:
        f.write(r.stdout)
    return " | ".join(r.stdout.strip().splitlines()[-lines:])


def pull():
    """Unbinds the gadget: the USB disk vanishes, as when a stick is pulled."""
    with open(GADGET + "/UDC", "w") as f:
        f.write("\n")


def unplug():
    subprocess.run(["umount", MOUNT], capture_output=True)
    if subprocess.run(["mountpoint", "-q", MOUNT]).returncode == 0:
        subprocess.run(["umount", "-l", MOUNT], capture_output=True)
    if open(GADGET + "/UDC").read().strip():
        pull()
    wait(lambda: not usb_disks(), 30)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def hub_records():
    out = []
    for name in os.listdir(HUB_STORE):
        path = os.path.join(HUB_STORE, name)
        if name.endswith(".json") and len(name) > 40 and os.path.isfile(path[:-5]):
            with open(path) as f:
                out.append(json.load(f))
    return out


def pending(config):
    """Items the station still owes the hub (status --json): to send, or waiting for a receipt."""
    rc, out = station(config, "status", "--json")
    if rc != 0:
        return -1
    s = json.loads(out[out.index("{"):])
    c = s["counts"]
    return c["queued"] + c["uploading"] + c["failed"] + c["held"] + s["awaiting_receipt"]


def station(config, *args, timeout=300):
    r = subprocess.run([BIN, "--config", config, *args], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout + r.stderr


def main():
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(WORK)
    os.makedirs(HUB_MOUNT)
    # The host's /media is read-only in the guest; a tmpfs gives the mount point.
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/media"], check=True)
    os.makedirs(MOUNT)
    for module in ["loop", "vfat", "nls_cp437", "nls_iso8859_1", "libcomposite", "usb_f_mass_storage", "dummy_hcd",
                   "usb_storage", "sd_mod"]:
        r = subprocess.run(["modprobe", module], capture_output=True, text=True)
        if r.returncode != 0:
            return verdict(False, f"stick: modprobe {module}: {r.stderr.strip()}")
    sh("truncate", "-s", "96M", STICK_IMG)
    sh("mkfs.vfat", "-n", "TELESTATION", STICK_IMG)
    make_gadget()

    # Hub: this station enrolled with its own token.
    r = sh(HUB_BIN, "enroll", "--store", HUB_STORE, STATION, "--output", WORK + "/token")
    hub_log = open(OUT + "/stick-hub.log", "a")
    config = WORK + "/station.toml"
    write_config(config, WORK + "/state", f"http://127.0.0.1:{HUB_PORT}/files/", KIOSK_PORT,
                 token_file=WORK + "/token", station_id=STATION, backoff_max="2s")
    jpegs = make_jpegs(WORK + "/jpeg", IMAGES + 1, random.Random(1609), 200, 640)

    # 1. Online once.
    hub = Hub(BIN_DIR, HUB_STORE, OUT + "/stick-hub.log", port=HUB_PORT)
    rc1, out1 = station(config, "enqueue", "--case", "40123456", jpegs[0][0])
    rc2, out2 = station(config, "sync", "--wait-receipts", "2m")
    learnt = os.path.exists(WORK + "/state/hub-keys")
    stations = json.load(open(HUB_STORE + "/.hub/stations.json"))["stations"]
    verdict(rc1 == 0 and rc2 == 0 and learnt and stations.get(STATION, {}).get("signing_key"),
            f"stick: first contact over the link teaches the station the hub's keys ({'kept' if learnt else 'MISSING'}) "
            f"and the hub the station's signing key ({'kept' if stations.get(STATION, {}).get('signing_key') else 'MISSING'})"
            + ("" if rc1 == 0 and rc2 == 0 else f"; enqueue/sync: {out1[-200:]} {out2[-200:]}"))
    hub.stop()
    before = len(hub_records())

    # 2. Offline: twenty images.
    for path, _ in jpegs[1:]:
        rc, out = station(config, "enqueue", "--case", "40123456", "--site", "back", path)
        if rc != 0:
            return verdict(False, f"stick: enqueue {path}: {out[-300:]}")
    daemon = Daemon(BIN_DIR, config, open(OUT + "/stick-daemon.log", "a"))
    try:
        # 3. Plugged in: seen by the daemon; pulled mid-export.
        node = plug()
        mount_stick(node)
        mounted_at = time.monotonic()
        seen = wait(lambda: (lambda s: s if s[1].get("mount_point") == MOUNT else None)(api("GET", "/api/v1/stick")), 30, 0.1)
        seen_after = time.monotonic() - mounted_at
        owed = seen[1]["owed_items"] if seen else 0
        verdict(seen and owed == 2 * IMAGES and seen[1]["can_export"],
                f"stick: the daemon sees the USB disk {node} mounted at {MOUNT} {f'{seen_after:.1f} s after the mount' if seen else 'NOT within 30 s'}; "
                f"the kiosk offers {owed} items ({seen[1]['owed_bytes'] if seen else 0} bytes) for export")
        result = {}
        t = threading.Thread(target=lambda: result.update(answer=api("POST", "/api/v1/stick/export")))
        t.start()
        partial = wait(lambda: glob.glob(MOUNT + "/telestation/.partial-*/items/0001.enc"), 60, 0.05)
        pull()
        t.join(300)
        status, body = result.get("answer", (0, None))
        owed_now = pending(config)
        verdict(partial and status == 500 and isinstance(body, dict) and not body.get("ok", True) and owed_now == 2 * IMAGES,
                f"stick: pulled while the daemon wrote its bundle: the export answered {status} "
                f"\"{(body or {}).get('message', body) if isinstance(body, dict) else body}\"; the queue still owes {owed_now} items")
        unplug()
        # What the pull left on the stick, seen at the hub: skipped or refused, never half-filed.
        sh("mount", "-o", "loop", STICK_IMG, HUB_MOUNT)
        left = sorted(os.listdir(HUB_MOUNT + "/telestation")) if os.path.isdir(HUB_MOUNT + "/telestation") else []
        r = sh(HUB_BIN, "import", "--store", HUB_STORE, HUB_MOUNT, check=False)
        filed_after_pull = len(hub_records()) - before
        verdict(filed_after_pull == 0 and ("unfinished bundle" in r.stdout or "no bundles" in r.stdout or "refused" in r.stdout),
                f"stick: after the pull the stick holds {left or 'no bundle'}; the hub's import says "
                f"\"{r.stdout.strip().splitlines()[0] if r.stdout.strip() else r.stderr.strip()[-200:]}\" and files {filed_after_pull} items")
        shutil.rmtree(HUB_MOUNT + "/telestation", ignore_errors=True)
        sh("umount", HUB_MOUNT)

        # 4. Plugged in again: the whole queue onto the stick through the kiosk.
        node = plug()
        mount_stick(node)
        wait(lambda: api("GET", "/api/v1/stick")[1].get("mount_point") == MOUNT, 30)
        status, op = api("POST", "/api/v1/stick/export")
        first_try = ""
        if status != 200 and isinstance(op, dict) and "Input/output error" in op.get("message", ""):
            # Under a loaded emulator the gadget's SCSI commands can time out
            # (a USB disk's I/O error, as a worn stick gives): staff would
            # plug it in again and retry; so does the check, and says so.
            first_try = f" (the first try failed: \"{op.get('message')}\"; kernel: {kernel_log(6)}; plugged in again)"
            unplug()
            node = plug()
            mount_stick(node)
            wait(lambda: api("GET", "/api/v1/stick")[1].get("mount_point") == MOUNT, 30)
            shutil.rmtree(MOUNT + "/telestation", ignore_errors=True)
            status, op = api("POST", "/api/v1/stick/export")
        bundles = glob.glob(MOUNT + "/telestation/" + STATION + "-*")
        exported = status == 200 and op.get("items") == 2 * IMAGES and len(bundles) == 1
        verdict(exported,
                f"stick: the kiosk's export wrote {op.get('items') if isinstance(op, dict) else op} items: \"{op.get('message') if isinstance(op, dict) else ''}\"{first_try}"
                + ("" if exported else f"; kernel: {kernel_log()}"))
        if not exported:
            return
        unplug()
        gone = wait(lambda: api("GET", "/api/v1/stick")[1].get("mount_point") is None, 30)
        verdict(gone, "stick: unplugged, the kiosk stops offering the export")

        # 5. At the hub.
        sh("mount", "-o", "loop", STICK_IMG, HUB_MOUNT)
        r1 = sh(HUB_BIN, "import", "--store", HUB_STORE, HUB_MOUNT, check=False)
        records = hub_records()
        originals = {s: p for p, s in jpegs}
        images = [x for x in records if x["metadata"].get("kind") == "image"]
        identical = all(sha(os.path.join(HUB_STORE, x["stored_as"])) == x["metadata"]["sha256"] for x in records)
        each_once = sorted(x["metadata"]["sha256"] for x in images) == sorted(originals)
        verdict(r1.returncode == 0 and len(records) - before == 2 * IMAGES and identical and each_once,
                f"stick: `telestation-hub import`: \"{r1.stdout.strip().splitlines()[0] if r1.stdout else r1.stderr[-200:]}\"; "
                f"the hub holds {len(images)} images, each once, byte-identical to the camera's files")
        r2 = sh(HUB_BIN, "import", "--store", HUB_STORE, HUB_MOUNT, check=False)
        verdict(r2.returncode == 0 and len(hub_records()) == len(records) and f"0 filed, {2 * IMAGES} already held" in r2.stdout,
                f"stick: the same stick imported again files nothing: \"{r2.stdout.strip().splitlines()[0] if r2.stdout else ''}\"")
        tampered(bundles)
        sh("umount", HUB_MOUNT)

        # 6. Back at the station: receipts on plug-in; then the link returns.
        node = plug()
        mount_stick(node)
        got = wait(lambda: (lambda s: s if (s.get("last_receipts") or {}).get("items") else None)(api("GET", "/api/v1/stick")[1]), 60)
        owed_now = pending(config)
        verdict(got and got["last_receipts"]["items"] == 2 * IMAGES and owed_now == 0,
                f"stick: plugged in at the station, the daemon read the hub's receipts: \"{(got or {}).get('last_receipts', {}).get('message')}\"; {owed_now} items pending")
        unplug()
        def uploads_of_images():
            """Uploads the hub created for images and previews (its .incoming
            records, kept after completion), and the stored ones."""
            created = 0
            for name in os.listdir(HUB_STORE + "/.incoming"):
                if name.endswith(".json"):
                    with open(os.path.join(HUB_STORE, ".incoming", name)) as f:
                        created += json.load(f)["metadata"].get("kind") in ("image", "preview")
            stored = sum(1 for x in hub_records() if x["metadata"].get("kind") in ("image", "preview"))
            return created, stored
        created_before, stored_before = uploads_of_images()
        hub = Hub(BIN_DIR, HUB_STORE, OUT + "/stick-hub.log", port=HUB_PORT)
        # The daemon's health report goes as soon as the hub answers: then the link is surely back.
        reports = wait(lambda: any(x["metadata"].get("kind") == "health" for x in hub_records()), 120)
        time.sleep(10)   # several more of the daemon's upload rounds (backoff_max 2 s)
        created_after, stored_after = uploads_of_images()
        verdict(reports and created_after == created_before and stored_after == stored_before,
                f"stick: the link returns ({'a health report arrived' if reports else 'NO health report arrived'}): the station creates "
                f"{created_after - created_before} uploads of images or previews; the hub holds {stored_after} of them, as before")

        # 7. Revoked: diagnose explains.
        sh(HUB_BIN, "revoke", "--store", HUB_STORE, STATION)
        rc, out = station(config, "diagnose", "--json", "--only", "hub", timeout=300)
        try:
            report = json.loads(out[out.index("{"):])
            auth = [c for c in report["checks"] if c["check"] == "hub.auth"]
        except ValueError:
            auth = []
        verdict(auth and auth[0]["status"] == "FAIL" and "revoked" in auth[0]["finding"],
                f"stick: revoked at the hub, diagnose says \"{auth[0]['finding'] if auth else out[-300:]}\" -> \"{auth[0].get('next_step') if auth else ''}\"")
        hub.stop()
    finally:
        daemon.stop()
        subprocess.run(["umount", "-l", MOUNT], capture_output=True)
        subprocess.run(["umount", "-l", HUB_MOUNT], capture_output=True)
        if os.path.exists(GADGET + "/UDC") and open(GADGET + "/UDC").read().strip():
            pull()


def tampered(bundles):
    """Copies of the bundle, each damaged one way, imported into a scratch hub."""
    src = HUB_MOUNT + "/telestation/" + os.path.basename(bundles[0])
    cases = []
    for name, damage in [("flipped byte", flip), ("swapped files", swap), ("another hub", None)]:
        root = f"{WORK}/tamper-{name.replace(' ', '-')}"
        shutil.rmtree(root, ignore_errors=True)
        os.makedirs(root + "/telestation")
        dst = root + "/telestation/" + os.path.basename(src)
        shutil.copytree(src, dst)
        for f in ("receipts.json", "receipts.sig"):
            if os.path.exists(os.path.join(dst, f)):
                os.remove(os.path.join(dst, f))
        store = WORK + "/tamper-store"
        shutil.rmtree(store, ignore_errors=True)
        if damage:
            damage(dst)
            # The real hub's keys and registry, on a scratch store.
            shutil.copytree(HUB_STORE + "/.hub", store + "/.hub")
        else:
            os.makedirs(store)
            shutil.copytree(HUB_STORE + "/.hub", store + "/.hub")
            os.remove(store + "/.hub/keys.json")   # a hub with other keys
        r = sh(HUB_BIN, "import", "--store", store, root, check=False)
        filed = [n for n in os.listdir(store) if n.endswith(".json") and len(n) > 40]
        line = r.stdout.strip().splitlines()[0] if r.stdout.strip() else r.stderr.strip()[-200:]
        cases.append((name, r.returncode != 0 and "refused" in line and not filed, line))
    for name, ok, line in cases:
        verdict(ok, f"stick: a bundle with a {name} is refused, nothing filed: \"{line}\"")


def flip(bundle):
    path = bundle + "/items/0002.enc"
    with open(path, "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 1]))


def swap(bundle):
    a, b = bundle + "/items/0001.enc", bundle + "/items/0002.enc"
    os.rename(a, a + ".tmp")
    os.rename(b, a)
    os.rename(a + ".tmp", b)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - every failure must be a FAIL line
        verdict(False, f"stick: the checks stopped: {type(e).__name__}: {e}")
