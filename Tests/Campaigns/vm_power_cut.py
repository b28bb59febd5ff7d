#!/usr/bin/env python3
"""Power cuts for real: the station in a VM whose power is cut.

The station's state directory (queue database and encrypted spool) lives on
an ext4 filesystem on a virtual disk of a virtme-ng VM (a file attached with
`vng --disk`, seen by the guest as a virtio disk, as the SD card is on a
station). The guest runs the built `telestation run` (synthetic camera) and
`telestation enqueue`; the host drives kiosk captures through a forwarded
port and the real `telestation-hub` runs on the host's loopback, which the
guest reaches only through one QEMU user-networking forward (the guest's
network is otherwise restricted). A power cut is SIGKILL to the QEMU process:
the guest's page cache, and everything it had not yet written to the disk
file, is gone, exactly as when a station loses power, while the hub (another
machine) lives on.

Each cycle boots the VM, lets it capture, enqueue, upload and run retention,
and cuts the power at a seeded-random moment: during start-up (recovery and
retention), at a random time, or the instant the hub completes an upload.
After each cut e2fsck checks and repairs the disk image (as the station's
boot does) and what it repaired is recorded. A last boot keeps the power on
until everything is uploaded and unmounts cleanly; then the campaign checks
that every image the station acknowledged (the kiosk's accept answered 200,
or `enqueue` printed "queued as item") is on the hub exactly once with the
same sha256, that nothing else is, that the queue passes SQLite's
`PRAGMA integrity_check` and the station's own storage check, that no
interrupted write's temporary file survived recovery, and that fsck never
had to give up.

usage: vm_power_cut.py --bin .build/debug --cuts 20 [--seed N] [--results FILE]
"""
import argparse
import glob
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from campaign import (Hub, LineReader, check_delivery, check_spool, free_port, log, make_jpegs,  # noqa: E402
                      report)

GUEST_SCRIPT = os.path.join(HERE, "vm_power_cut_guest.sh")
GUEST_IP = "10.0.2.15"
HUB_ALIAS = "10.0.2.100"     # the guest's name for the hub; QEMU forwards it to the host's loopback
KIOSK_PORT = 8080
MOUNT = "/run/station-disk"  # where the guest mounts the station's disk
# Modules udev would load for the emulated PC's devices (KVM, AHCI and the
# CD drive, SIMD crypto, watchdog, ...): none of them is used here, and
# loading them under software emulation doubles the boot time.
UNUSED_MODULES = ("kvm_amd,kvm_intel,kvm,irqbypass,ccp,crct10dif_pclmul,crc32_pclmul,ghash_clmulni_intel,"
                  "sha512_ssse3,sha256_ssse3,sha1_ssse3,sr_mod,cdrom,sg,iTCO_wdt,intel_pmc_bxt,ahci,libahci,libata,"
                  "aesni_intel,crypto_simd,cryptd,i2c_i801,psmouse,i2c_smbus,serio_raw,lpc_ich,pcspkr,i6300esb,evdev,"
                  "button,qemu_fw_cfg,intel_rapl_msr,intel_rapl_common,powernow_k8,acpi_cpufreq")


# --- the guestfwd relay -----------------------------------------------------------
def relay(port):
    """QEMU runs this once per guest connection to HUB_ALIAS (guestfwd=...-cmd:),
    with the connection on stdin/stdout: it copies bytes to and from the hub
    on 127.0.0.1:port. Nothing else on the host is reachable from the guest."""
    s = socket.create_connection(("127.0.0.1", port))

    def up():
        while True:
            b = os.read(0, 65536)
            if not b:
                break
            s.sendall(b)
        s.shutdown(socket.SHUT_WR)

    threading.Thread(target=up, daemon=True).start()
    while True:
        b = s.recv(65536)
        if not b:
            break
        os.write(1, b)


# --- tools --------------------------------------------------------------------------
def find_vng(explicit):
    """vng from --vng, $VNG, beside the Python running this (pip installs it
    there, in a venv too), PATH, or the project's virtual environment."""
    root = os.path.dirname(os.path.dirname(HERE))
    for candidate in (explicit, os.environ.get("VNG"), os.path.join(os.path.dirname(sys.executable), "vng"),
                      shutil.which("vng"), os.path.join(root, ".build", "venv", "bin", "vng")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise SystemExit("vm_power_cut: virtme-ng's vng not found (looked at --vng, $VNG, PATH and .build/venv/bin); "
                     "run `make deps`, or pass --vng /path/to/vng")


def find_kernel(explicit):
    if explicit:
        return explicit
    kernels = [k for k in glob.glob("/boot/vmlinuz-*-amd64") if "cloud" not in k]
    if not kernels:
        raise SystemExit("vm_power_cut: no /boot/vmlinuz-*-amd64; install linux-image-amd64 (make deps)")
    return sorted(kernels, key=lambda k: [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", k)])[-1]


def need(tool, package):
    if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}") and not os.path.exists(f"/sbin/{tool}"):
        raise SystemExit(f"vm_power_cut: {tool} not found; install {package} (make deps)")


def source_commit(bin_dir, explicit):
    """The commit the binaries were built from: --source's HEAD, else the
    checkout holding BIN_DIR (.build/debug sits in it)."""
    src = explicit or os.path.dirname(os.path.dirname(os.path.abspath(bin_dir)))
    try:
        head = subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", src, "status", "--porcelain", "--untracked-files=no", "--", "Sources",
                                "Package.swift"], capture_output=True, text=True).stdout.strip() != ""
        return head, dirty, src
    except (subprocess.CalledProcessError, FileNotFoundError):
        raise SystemExit(f"vm_power_cut: cannot tell which commit the binaries in {bin_dir} come from; "
                         f"pass --source with the checkout they were built from")


def fsck(image):
    """e2fsck -f -y on the disk image, as the station's boot would run it.
    Returns its exit status and what it found, sorted: the journal replay,
    the superblock's free block/inode totals (which ext4 only writes back at
    unmount, so they are stale after any cut and fsck -p fixes them
    silently), orphaned inodes (files deleted while still open) and anything
    else, which is a real repair."""
    r = subprocess.run(["e2fsck", "-f", "-y", image], capture_output=True, text=True)
    routine = re.compile(r"^(e2fsck \d|Pass \d|.*: recovering journal|.*\*\*\*\*\* FILE SYSTEM WAS MODIFIED|"
                         r".*: \d+/\d+ files .*blocks$|\s*$)")
    found = {"rc": r.returncode, "journal_replayed": False, "free_counts": 0, "orphans": 0, "repairs": []}
    for line in (r.stdout + r.stderr).splitlines():
        if "recovering journal" in line:
            found["journal_replayed"] = True
        if routine.match(line):
            continue
        line = line.strip()
        if re.fullmatch(r"\w+\? yes", line):           # the answer to the message before
            continue
        if re.match(r"Free (blocks|inodes) count wrong \(", line):
            found["free_counts"] += 1
        elif line.startswith("Clearing orphaned inode") or line.startswith("Truncating orphaned inode"):
            found["orphans"] += 1
        else:
            found["repairs"].append(line)
    return found


def debugfs(image, *commands):
    r = subprocess.run(["debugfs", "-R", " ".join(commands), image], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


# --- the VM ---------------------------------------------------------------------------
class VM:
    """One boot of the station's VM."""

    def __init__(self, c, mode, plan):
        self.c = c
        # --force-9p: vng would otherwise try virtiofsd first and wait 3 s for it.
        args = [c.vng, "--run", c.kernel, "--disable-kvm", "--force-9p", "--memory", c.memory, "--disk", c.image,
                "--qemu-opts=" + c.net_opts, "--append", "modprobe.blacklist=" + UNUSED_MODULES,
                "--exec", f"sh {c.guest_script} {mode} {c.bin} {c.guest_config} {plan} {c.preload}"]
        self.started = time.monotonic()
        # A session of its own, so QEMU (vng's grandchild) can be found by it.
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     start_new_session=True, env=c.vm_env)
        self.out = LineReader(self.proc.stdout, c.guest_log)
        self.err = LineReader(self.proc.stderr, c.daemon_log)

    def pids(self):
        """Processes of this VM's session: vng, QEMU and QEMU's forwarding relays."""
        found = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                with open(stat) as f:
                    text = f.read()
            except OSError:
                continue
            comm = text[text.index("(") + 1:text.rindex(")")]
            fields = text[text.rindex(")") + 2:].split()
            if int(fields[3]) == self.proc.pid:  # session id
                found.append((int(stat.split("/")[2]), comm))
        return found

    def find_qemu(self):
        """Looked up once the guest runs, so that the cut itself is one kill(2)."""
        self.qemu = [pid for pid, comm in self.pids() if comm.startswith("qemu-system")]

    def cut(self):
        """The power cut: SIGKILL to QEMU. Returns False if QEMU was already gone."""
        if not getattr(self, "qemu", None):
            self.find_qemu()
        alive = False
        for pid in self.qemu:
            try:
                os.kill(pid, signal.SIGKILL)
                alive = True
            except ProcessLookupError:
                pass
        self.reap()
        return alive

    def reap(self, timeout=60):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        # Whatever QEMU started (relays) or vng left behind, by pid.
        for pid, _ in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        # Every line the guest wrote before the cut, read to the end.
        for reader in (self.out, self.err):
            with reader.cond:
                reader.cond.wait_for(lambda r=reader: r.lines and r.lines[-1] is None, 30)


# --- the host's side of the station: kiosk captures ------------------------------------
def request(method, url, token, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}"}
    if data:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


class Capturer:
    """Captures through the kiosk API (forwarded port) and accepts each
    capture, until the power is cut; records what the station acknowledged."""

    def __init__(self, c):
        self.c = c
        self.stopping = False
        self.in_capture = False
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def stop(self):
        with self.lock:
            self.stopping = True
            return self.in_capture

    def join(self):
        self.thread.join(180)

    def run(self):
        c = self.c
        api = f"http://127.0.0.1:{c.kiosk_host_port}"
        while True:
            with self.lock:
                if self.stopping:
                    return
                self.in_capture = True
            case = c.next_case()
            entry = None
            try:
                _, body = request("POST", f"{api}/api/v1/captures", c.token,
                                  {"case_id": case, "site": "arm_left", "note": "vm power cut"})
                rid = json.loads(body)["id"]
                _, image = request("GET", f"{api}/api/v1/captures/{rid}/image", c.token)
                _, preview = request("GET", f"{api}/api/v1/captures/{rid}/preview", c.token)
                entry = (case, hashlib.sha256(image).hexdigest(), hashlib.sha256(preview).hexdigest())
                with c.lock:
                    c.sent_unanswered.append(entry)
                status, _ = request("POST", f"{api}/api/v1/captures/{rid}/accept", c.token)
                # An answer that arrived was sent before the cut: the station acknowledged.
                with c.lock:
                    c.sent_unanswered.remove(entry)
                    if status == 200:
                        c.accepted.append(entry)
                        c.captures += 1
                    else:
                        c.problems.append(f"accept of capture {rid} answered {status}")
            except Exception as e:
                with self.lock:
                    stopping = self.stopping
                if not stopping:
                    with c.lock:
                        c.problems.append(f"a kiosk capture failed while the power was on: {e!r}")
                    return
                # Cut off: an accept sent and not answered stays in sent_unanswered.
            finally:
                with self.lock:
                    self.in_capture = False
            time.sleep(c.rng_pauses.uniform(0, 0.5))


# --- the campaign -----------------------------------------------------------------------
class Campaign:
    def __init__(self, a, work):
        self.bin = os.path.abspath(a.bin)
        self.seed = a.seed
        self.rng = random.Random(a.seed)
        self.rng_actions = random.Random(a.seed + 1)
        self.rng_pauses = random.Random(a.seed + 4)  # the capture thread's own
        self.lock = threading.Lock()
        self.accepted = []
        self.sent_unanswered = []
        self.problems = []
        self.case_counter = 0
        self.captures = 0
        self.enqueues = 0
        self.work = work
        self.vng = find_vng(a.vng)
        self.kernel = find_kernel(a.kernel)
        self.memory = a.memory
        self.drain_timeout = a.drain_timeout
        self.image = os.path.join(work, "station-disk.img")
        # The guest's script is copied at the start: a long run must not pick
        # up an edit of the checkout made for newer binaries than it tests.
        self.guest_script = os.path.join(work, "guest.sh")
        shutil.copyfile(GUEST_SCRIPT, self.guest_script)
        self.preload = ""
        # vng runs virtme-run by name: from its own directory, not through a
        # version-manager shim that costs half a second per boot.
        self.vm_env = dict(os.environ, DRAIN_TIMEOUT=str(a.drain_timeout),
                           PATH=os.path.dirname(os.path.realpath(self.vng)) + os.pathsep + os.environ.get("PATH", ""))

    def next_case(self):
        with self.lock:
            self.case_counter += 1
            return f"{50000000 + self.seed % 1000 * 10000 + self.case_counter}"


def write_station_config(path, state_dir, hub_url, listen, token_file, key_file, keep_uploaded, min_free):
    with open(path, "w") as f:
        f.write(f"""[station]
id = "ps-vm-power-cut"
state_dir = "{state_dir}"
[hub]
url = "{hub_url}"
[camera]
device = "synthetic"
width = 640
height = 480
warmup_frames = 0
[uplink]
min_chunk = "8KiB"
max_chunk = "64KiB"
backoff_max = "2s"
stall_timeout = "20s"
[kiosk]
listen = "{listen}"
token_file = "{token_file}"
[spool]
min_free = "{min_free}"
keep_uploaded = "{keep_uploaded}"
key_file = "{key_file}"
""")


def secret_file(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.close(fd)


def build_preload(work):
    """The deliberate fault for --mutation no-spool-fsync: a library that makes
    fsync(2) a no-op for the spool's temporary files (image and preview data
    before their rename), leaving SQLite's and every other fsync alone."""
    src = os.path.join(work, "nofsync.c")
    lib = os.path.join(work, "nofsync.so")
    with open(src, "w") as f:
        f.write(r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
static int is_spool_temp(int fd) {
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return 0;
    path[n] = 0;
    return strstr(path, "/spool/.tmp-") != NULL;
}
int fsync(int fd) {
    static int (*real)(int);
    if (is_spool_temp(fd)) return 0;
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    return real(fd);
}
""")
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", lib, src, "-ldl"], check=True)
    return lib


def main():
    p = argparse.ArgumentParser(description="Power cuts for real: the station's VM killed with its disk attached.")
    p.add_argument("--bin", default=".build/debug", help="directory holding telestation and telestation-hub")
    p.add_argument("--cuts", type=int, default=20)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--results", default=None, help="JSON results file (bench/campaigns/vm-power-cut-*.json)")
    p.add_argument("--source", default=None, help="checkout the binaries were built from (for the commit id)")
    p.add_argument("--vng", default=None, help="virtme-ng's vng (default: $VNG, PATH, .build/venv/bin/vng)")
    p.add_argument("--kernel", default=None, help="guest kernel (default: the newest /boot/vmlinuz-*-amd64)")
    p.add_argument("--memory", default="1G")
    p.add_argument("--disk-size", default="96M", help="size of the station's ext4 disk image")
    p.add_argument("--min-free", default="24MiB", help="spool.min_free: with a small disk, retention frees space early")
    p.add_argument("--keep-uploaded", default="20s", help="spool.keep_uploaded: retention runs at each boot")
    p.add_argument("--max-cycle", type=float, default=8.0,
                   help="longest time the power stays on once the daemon listens (s)")
    p.add_argument("--boot-timeout", type=float, default=240.0)
    p.add_argument("--drain-timeout", type=float, default=900.0)
    p.add_argument("--mutation", choices=["no-spool-fsync"], default=None,
                   help="run against a deliberately broken station, to see the campaign fail")
    p.add_argument("--work", default=None, help="work directory (default: a new one under .build/)")
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    a = p.parse_args()
    for tool, package in (("e2fsck", "e2fsprogs"), ("debugfs", "e2fsprogs"), ("mkfs.ext4", "e2fsprogs"),
                          ("sqlite3", "sqlite3"), ("cjpeg", "libjpeg-turbo-progs"), ("cc", "gcc"),
                          ("qemu-system-x86_64", "qemu-system-x86")):
        need(tool, package)
    for b in ("telestation", "telestation-hub"):
        if not os.access(os.path.join(a.bin, b), os.X_OK):
            raise SystemExit(f"vm_power_cut: {os.path.join(a.bin, b)} is not built; run `swift build` or pass --bin")
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    commit, dirty, source = source_commit(a.bin, a.source)
    log(f"vm power-cut campaign: seed {a.seed}, {a.cuts} cuts (rerun with --seed {a.seed}); "
        f"binaries of {commit[:12]}{' (uncommitted changes)' if dirty else ''}"
        + (f"; MUTATION {a.mutation}" if a.mutation else ""))

    # The guest sees the host's files read-only; the work directory only
    # needs to be readable there (not /tmp, which the guest overlays).
    root = os.path.dirname(os.path.dirname(HERE))
    if a.work:
        work = os.path.abspath(a.work)
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
    else:
        os.makedirs(os.path.join(root, ".build"), exist_ok=True)
        work = tempfile.mkdtemp(prefix="vm-power-cut.", dir=os.path.join(root, ".build"))
    c = Campaign(a, work)
    c.guest_log = open(os.path.join(work, "guest.log"), "a", buffering=1)
    c.daemon_log = open(os.path.join(work, "daemon.log"), "a", buffering=1)
    if a.mutation:
        c.preload = build_preload(work)

    started = time.monotonic()
    hub = Hub(a.bin, os.path.join(work, "hub"), os.path.join(work, "hub.log"))
    try:
        run(c, a, hub, work, commit, dirty, source, started)
    finally:
        hub.stop()
        c.guest_log.close()
        c.daemon_log.close()
        if not (a.keep or c.problems):
            shutil.rmtree(work, ignore_errors=True)
        elif c.problems:
            log(f"work directory kept: {work}")


def run(c, a, hub, work, commit, dirty, source, started):
    # The station's disk: a fresh ext4 image, as a new SD card.
    with open(c.image, "wb") as f:
        f.truncate(parse_size(a.disk_size))
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "station", c.image], check=True)

    c.token = hashlib.sha256(f"{a.seed}".encode()).hexdigest()[:32]
    token_file = os.path.join(work, "kiosk.token")
    secret_file(token_file, c.token.encode())
    key_file = os.path.join(work, "spool.key")
    secret_file(key_file, random.Random(a.seed + 3).randbytes(32))
    hub_path = hub.url.split(f"127.0.0.1:{hub.port}", 1)[1]
    c.guest_config = os.path.join(work, "station.toml")
    write_station_config(c.guest_config, f"{MOUNT}/state", f"http://{HUB_ALIAS}:8000{hub_path}",
                         f"{GUEST_IP}:{KIOSK_PORT}", token_file, key_file, a.keep_uploaded, a.min_free)

    # The guest's network: restricted (no way out), except the hub forward
    # (to the host's loopback, through relay()) and the kiosk port forwarded
    # from the host's loopback.
    relay_cmd = os.path.join(work, "hub-relay")
    with open(relay_cmd, "w") as f:
        f.write(f"#!/bin/sh\nexec {sys.executable} {os.path.abspath(__file__)} --relay {hub.port}\n")
    os.chmod(relay_cmd, 0o755)
    c.kiosk_host_port = free_port()
    c.net_opts = (f"-device virtio-net-pci,netdev=pc0 -netdev user,id=pc0,restrict=on,"
                  f"guestfwd=tcp:{HUB_ALIAS}:8000-cmd:{relay_cmd},"
                  f"hostfwd=tcp:127.0.0.1:{c.kiosk_host_port}-{GUEST_IP}:{KIOSK_PORT}")
    c.images = make_jpegs(os.path.join(work, "src"), 12, random.Random(a.seed + 2))

    hub_events = {"created": set(), "completed": set()}
    completions = threading.Semaphore(0)

    def on_hub_line(line):
        m = re.search(r"id=([0-9a-f]{32})", line)
        if "created upload" in line and m:
            hub_events["created"].add(m.group(1))
        if "upload complete" in line:
            if m:
                hub_events["completed"].add(m.group(1))
            completions.release()
    hub.err.listeners.append(on_hub_line)
    hub.out.listeners.append(on_hub_line)

    kinds = {"during_startup": 0, "at_hub_completion": 0, "random_time": 0}
    during = {"capture": 0, "enqueue": 0, "upload": 0, "retention_boot": 0}
    fsck_stats = {"runs": 0, "journal_replays": 0, "free_count_fixes": 0, "orphans_cleared": 0, "other_repairs": 0,
                  "uncorrected": 0, "repair_lines": []}
    cycles = []

    for n in range(1, a.cuts + 1):
        plan = os.path.join(work, f"plan-{n}.txt")
        with open(plan, "w") as f:
            for _ in range(40):
                path, _sha = c.rng_actions.choice(c.images)
                f.write(f"{c.next_case()} {path} {c.rng_actions.uniform(0, 1.5):.2f}\n")
        enq = {"started": [], "acked": set(), "failed": []}
        sha_of = {path: sha for path, sha in c.images}
        plan_rows = {ln.split()[0]: ln.split()[1] for ln in open(plan)}

        def on_guest_line(line, enq=enq):
            if not line.startswith("PC:"):
                return
            parts = line[3:].split(" ", 2)
            if parts[0] == "ENQ-START":
                enq["started"].append(parts[1])
            elif parts[0] == "ENQ-ACK":
                enq["acked"].add(parts[1])
            elif parts[0] == "ENQ-FAIL":
                enq["failed"].append(line)

        t_boot = time.monotonic()
        vm = VM(c, "cycle", plan)
        vm.out.listeners.append(on_guest_line)
        kind = c.rng.choices(["during_startup", "at_hub_completion", "random_time"], [0.25, 0.3, 0.45])[0]
        cycle = {"cut": n, "kind": kind}
        started_daemon = vm.out.wait_for(r"^PC:(DAEMON-START|FAILED.*)", a.boot_timeout)
        if not started_daemon or started_daemon.group(1) != "DAEMON-START":
            vm.cut()
            c.problems.append(f"cycle {n}: the VM did not start the daemon: "
                              + (started_daemon.group(1) if started_daemon else f"nothing within {a.boot_timeout:.0f} s"))
            break
        t_daemon = time.monotonic()
        cycle["boot_s"] = round(t_daemon - t_boot, 1)
        vm.find_qemu()
        capturer = None
        if kind == "during_startup":
            # Recovery pass, retention's first round and the first enqueue.
            time.sleep(c.rng.uniform(0, 4))
        else:
            if not vm.err.wait_for(r"listening http://", a.boot_timeout):
                vm.cut()
                c.problems.append(f"cycle {n}: telestation run did not start listening; see daemon.log")
                break
            cycle["ready_s"] = round(time.monotonic() - t_daemon, 1)
            capturer = Capturer(c)
            if kind == "at_hub_completion":
                while completions.acquire(blocking=False):
                    pass
                if not completions.acquire(timeout=c.rng.uniform(1, a.max_cycle)):
                    kind = cycle["kind"] = "random_time"
            else:
                time.sleep(c.rng.uniform(0.5, a.max_cycle))
        # The moment of the cut: what was in flight.
        in_capture = capturer.stop() if capturer else False
        in_upload = bool(hub_events["created"] - hub_events["completed"])
        if not vm.cut():
            c.problems.append(f"cycle {n}: QEMU had already exited before the cut; see guest.log")
        cycle["on_s"] = round(time.monotonic() - t_daemon, 1)
        if capturer:
            capturer.join()
        kinds[kind] += 1
        open_enqueues = [case for case in enq["started"] if case not in enq["acked"]]
        during["capture"] += in_capture
        during["enqueue"] += bool(open_enqueues)
        during["upload"] += in_upload
        retention_ran = any("retention deleted uploaded files" in (ln or "") for ln in vm.err.lines)
        during["retention_boot"] += retention_ran
        with c.lock:
            for case in enq["started"]:
                path = plan_rows[case]
                entry = (case, sha_of[path], None)
                if case in enq["acked"]:
                    c.accepted.append(entry)
                    c.enqueues += 1
                else:
                    c.sent_unanswered.append(entry)
        if enq["failed"]:
            c.problems.extend(f"cycle {n}: enqueue failed while the power was on: {f}" for f in enq["failed"])

        # The station's boot: fsck before the disk is mounted again.
        f = fsck(c.image)
        fsck_stats["runs"] += 1
        fsck_stats["journal_replays"] += f["journal_replayed"]
        fsck_stats["free_count_fixes"] += bool(f["free_counts"])
        fsck_stats["orphans_cleared"] += f["orphans"]
        fsck_stats["other_repairs"] += len(f["repairs"])
        fsck_stats["repair_lines"].extend(f"cut {n}: {r}" for r in f["repairs"])
        if f["rc"] >= 4:
            fsck_stats["uncorrected"] += 1
            c.problems.append(f"cycle {n}: e2fsck exit {f['rc']} (errors left uncorrected): {f['repairs'][:5]}")
        cycle.update({"fsck_rc": f["rc"], "journal_replayed": f["journal_replayed"], "fsck_repairs": len(f["repairs"]),
                      "orphans": f["orphans"], "in_capture": in_capture, "open_enqueues": len(open_enqueues),
                      "in_upload": in_upload, "retention_ran": retention_ran,
                      "cycle_s": round(time.monotonic() - t_boot, 1)})
        cycles.append(cycle)
        log(f"  cut {n}/{a.cuts}: {kind}, boot {cycle['boot_s']} s, daemon ready {cycle.get('ready_s', '-')} s, "
            f"power on {cycle['on_s']} s, cycle {cycle['cycle_s']} s, "
            f"{len(c.accepted)} acknowledged so far; fsck exit {f['rc']}"
            f"{' (journal replayed)' if f['journal_replayed'] else ''}"
            f"{', %d orphan(s) cleared' % f['orphans'] if f['orphans'] else ''}"
            f"{', repaired: ' + '; '.join(f['repairs'][:3]) if f['repairs'] else ''}")
        if c.problems:
            break

    final = {}
    if not c.problems:
        final = drain_and_check(c, a, hub, work)
    duration = time.monotonic() - started
    files = final.get("files", [])
    counts = {}
    for f in files:
        key = (f["metadata"].get("case"), f["metadata"].get("kind"), f["actual"])
        counts[key] = counts.get(key, 0) + 1
    acked_keys = {(case, "image", sha) for case, sha, _ in c.accepted}
    per_cycle = [x["cycle_s"] for x in cycles]
    figures = {
        "campaign": "vm-power-cut", "seed": a.seed, "commit": commit, "commit_dirty": dirty,
        "mutation": a.mutation, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kernel": os.path.basename(c.kernel), "disk": f"ext4 on a {a.disk_size} virtio disk image",
        "cuts": len(cycles), "cuts_requested": a.cuts, "cut_kinds": kinds, "cuts_during": during,
        "images_acknowledged": len(c.accepted), "captures_acknowledged": c.captures,
        "files_enqueued_acknowledged": c.enqueues, "answers_cut_off": len(c.sent_unanswered),
        "acknowledged_on_hub": sum(1 for k in acked_keys if k in counts),
        "hub_uploads": len(files), "duplicates": sum(n - 1 for n in counts.values() if n > 1),
        "spool_items": final.get("spool_items"), "held_items": final.get("held"),
        "retention_deleted_files": final.get("retention_deleted"),
        "fsck": {k: v for k, v in fsck_stats.items() if k != "repair_lines"},
        "fsck_repairs": fsck_stats["repair_lines"][:50],
        "final_fsck_rc": final.get("final_fsck_rc"), "lost_and_found": final.get("lost_and_found"),
        "duration_s": round(duration, 1),
        "per_cut_s": {"mean": round(sum(per_cycle) / len(per_cycle), 1) if per_cycle else None,
                      "max": max(per_cycle) if per_cycle else None},
        "boot_s_mean": round(sum(x["boot_s"] for x in cycles) / len(cycles), 1) if cycles else None,
        "drain_s": final.get("drain_s"),
        "problems": len(c.problems),
    }
    report(figures, a.results, c.problems, work)
    log(f"vm power-cut campaign passed: {len(cycles)} cuts, {len(c.accepted)} images acknowledged, all on the hub "
        f"once, {figures['duplicates']} duplicates, {duration:.0f} s ({figures['per_cut_s']['mean']} s per cut; "
        f"seed {a.seed})")


def drain_and_check(c, a, hub, work):
    """Power stays on: the last boot uploads everything and unmounts cleanly;
    then the disk is read on the host and checked."""
    log("draining (power stays on) ...")
    t = time.monotonic()
    vm = VM(c, "final", "-")
    ok = vm.out.wait_for(r"^PC:(UNMOUNTED|FAILED)", a.boot_timeout + a.drain_timeout + 120)
    vm.reap(120)
    out = {"drain_s": round(time.monotonic() - t, 1)}
    guest = [l for l in vm.out.lines if l and l.startswith("PC:")]
    if not ok or ok.group(1) != "UNMOUNTED" or "PC:DRAINED" not in guest:
        c.problems.append(f"the final boot did not drain and unmount cleanly: {guest[-6:]}")
        return out
    f = fsck(c.image)
    out["final_fsck_rc"] = f["rc"]
    if f["rc"] != 0 or f["journal_replayed"] or f["repairs"] or f["free_counts"] or f["orphans"]:
        c.problems.append(f"after a clean unmount e2fsck still found something: {f}")

    # The station's disk, read on the host without mounting it.
    state = os.path.join(work, "final-disk")
    os.makedirs(state)
    rc, _, err = debugfs(c.image, "rdump", "/state", state)
    state = os.path.join(state, "state")
    if not os.path.isdir(state):
        c.problems.append(f"debugfs could not copy the state directory off the disk: {err[-300:]}")
        return out
    _, lf, _ = debugfs(c.image, "ls", "-p", "/lost+found")
    out["lost_and_found"] = sum(1 for ln in lf.splitlines() if ln.startswith("/") and ln.split("/")[5] not in ("", ".", ".."))
    if out["lost_and_found"]:
        c.problems.append(f"fsck put {out['lost_and_found']} file(s) in lost+found")
    host_config = os.path.join(work, "host-check.toml")
    with open(c.guest_config) as src, open(host_config, "w") as dst:
        dst.write(src.read().replace(f'state_dir = "{MOUNT}/state"', f'state_dir = "{state}"')
                  .replace(f'listen = "{GUEST_IP}:{KIOSK_PORT}"', 'listen = "127.0.0.1:1"'))
    rows = check_spool(c.bin, host_config, state, c.problems)
    leftovers = [n for n in os.listdir(os.path.join(state, "spool")) if n.startswith(".tmp-")]
    if leftovers:
        c.problems.append(f"temporary files of interrupted writes survived recovery: {leftovers[:5]}")
    held = [r for r in rows if r["state"] == "held"]
    for r in held:
        if r["case_id"] != "":
            c.problems.append(f"item {r['id']} of case {r['case_id']} is held: {r['last_error']}")
    out["held"] = len(held)
    out["spool_items"] = len(rows)
    out["retention_deleted"] = sum(1 for r in rows if r["file_deleted_at"] is not None)
    out["files"] = check_delivery(hub.store, rows, c.accepted, c.sent_unanswered, c.problems)
    return out


def parse_size(text):
    m = re.fullmatch(r"(\d+)([KMG]?)", text)
    if not m:
        raise SystemExit(f"vm_power_cut: --disk-size {text!r}: give a size such as 96M")
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--relay":
        relay(int(sys.argv[2]))
    else:
        main()
