"""An HTTP fault injector between a station and the real hub, on loopback.

Each request from the station is either forwarded to the hub (one upstream
connection per request) or answered with a fault chosen by `decide`:
an error status (with Retry-After, or tusd's 500 lock timeout), a
connection reset in the middle of the request body (the hub gets part of
it), a stall (nothing is answered until the station gives up), or a
response cut off in the middle of its headers after the hub processed the
request. Every request and fault is recorded with its time.
"""
import asyncio
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Support"))
from impaired_proxy import abort  # noqa: E402  (RST on both sides, shared with the link imitation)

# name: (status, extra headers, body)
STATUS_FAULTS = {
    "409": (409, {}, "Upload-Offset mismatch"),
    "404": (404, {}, "upload not found"),
    "410": (410, {}, "upload expired"),
    "412": (412, {"Tus-Version": "1.0.0"}, "tus version not supported"),
    "415": (415, {}, "wrong content type"),
    "413": (413, {}, "upload too large for this hub"),
    "401": (401, {}, "missing or wrong bearer token"),
    "403": (403, {}, "station not enrolled"),
    "423": (423, {}, "upload locked by another request"),
    # Longer than the station's own backoff after its first failures (1, 2,
    # 4 s), so that a station ignoring them is seen retrying too early;
    # within the campaign's uplink.backoff_max, which caps them.
    "429": (429, {"Retry-After": "8"}, "too many requests"),
    "503": (503, {"Retry-After": "6"}, "maintenance"),
    "502": (502, {}, "bad gateway"),
    "500-lock": (500, {}, "ERR_LOCK_TIMEOUT: failed to acquire lock before timeout"),
    # The hub down for a while: every request answered so, without a hint when to come back.
    "outage": (503, {}, "hub down"),
}
TRANSPORT_FAULTS = ["reset-mid-body", "stall", "partial-headers"]
ALL_CLASSES = [c for c in STATUS_FAULTS if c != "outage"] + TRANSPORT_FAULTS
# Classes a person must act on: held, or failed for the long auth backoff.
HOLD_CLASSES = {"412", "415", "413"}
AUTH_CLASSES = {"401", "403"}


def applies(cls, method, body_length):
    """Where a class makes sense for the tus protocol the station speaks."""
    if method not in ("POST", "PATCH", "HEAD"):
        return False
    if cls in ("409", "404", "410"):
        # A 409 to a creation, or a 404 to a HEAD of an upload the hub
        # finished, would be the hub lying, not failing.
        return method == "PATCH"
    if cls in ("412", "415", "413"):
        return method in ("POST", "PATCH")
    if cls == "reset-mid-body":
        return body_length >= 2
    return True


class FaultProxy:
    def __init__(self, target_port, decide):
        self.target_port = target_port
        self.decide = decide  # (method, path, headers, body_length) -> class name or None
        self.log = []  # (time, method, path, fault or None)
        self.lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        ready.wait(30)

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)

        async def start():
            self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def stop(self):
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)

    def record(self, method, path, fault):
        with self.lock:
            self.log.append((time.monotonic(), method, path, fault))

    def requests(self):
        with self.lock:
            return list(self.log)

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                fault = self.decide(method, path, headers, length)
                self.record(method, path, fault)
                if fault is None:
                    body = await reader.readexactly(length)
                    await self.forward(head, body, writer)
                    return
                if fault in STATUS_FAULTS:
                    await reader.readexactly(length)
                    status, extra, text = STATUS_FAULTS[fault]
                    payload = (text + "\n").encode()
                    out = f"HTTP/1.1 {status} Fault\r\nTus-Resumable: 1.0.0\r\nContent-Type: text/plain\r\n"
                    out += "".join(f"{k}: {v}\r\n" for k, v in extra.items())
                    out += f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
                    writer.write(out.encode() + payload)
                    await writer.drain()
                    writer.close()
                    return
                if fault == "reset-mid-body":
                    part = await reader.readexactly(max(1, length // 2))
                    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
                    up_writer.write(head + part)
                    await up_writer.drain()
                    await asyncio.sleep(0.05)
                    abort(up_writer)
                    abort(writer)
                    return
                if fault == "stall":
                    # Say nothing until the station gives up on the exchange.
                    while await reader.read(65536):
                        pass
                    writer.close()
                    return
                if fault == "partial-headers":
                    body = await reader.readexactly(length)
                    response = await self.exchange(head, body)
                    cut = response.find(b"\r\n", response.find(b"\r\n") + 2)
                    writer.write(response[: max(cut, 20) + 8])
                    await writer.drain()
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.LimitOverrunError, ValueError):
            try:
                writer.close()
            except Exception:
                pass

    async def exchange(self, head, body):
        """The hub's whole answer to one request."""
        head = head[:-2] + b"Connection: close\r\n\r\n"
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        up_writer.write(head + body)
        await up_writer.drain()
        response = await up_reader.read(-1)
        up_writer.close()
        return response

    async def forward(self, head, body, writer):
        response = await self.exchange(head, body)
        writer.write(response)
        await writer.drain()
        writer.close()
