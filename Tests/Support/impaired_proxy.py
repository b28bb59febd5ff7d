#!/usr/bin/env python3
"""A TCP proxy that imitates a bad rural uplink between a station and its hub.

- rate: both directions share one token bucket of RATE bytes/s (the link);
- latency: every piece of data is delivered LATENCY seconds after it was read;
- resets: after every RESET_EVERY bytes read from clients, the connection that
  crossed the mark is aborted with an RST (both sides); the bytes still on the
  link (read, not yet delivered) are lost. With --hub-side fin the hub's side
  is closed with a FIN instead: the hub reads every byte that reached it, then
  the end of the connection, as it would before its own timeout after a radio
  drop. An RST lets a server that is slow to read (under CPU load) lose what
  its kernel already held, which is a property of the moment, not of the
  client under test;
- outages: every OUTAGE_EVERY seconds, nothing moves for OUTAGE_FOR seconds
  (connections stay open, as when a radio link fades). The schedule starts at
  the first client connection, so every client meets the same outages however
  long it takes to start.

Bytes read from clients ("upstream", what the station put on the link) are
counted and written as JSON to STATS on exit (SIGTERM) and every second.
Prints "READY <port>" once listening.

usage: impaired_proxy.py --target HOST:PORT --stats FILE [--rate B/s]
       [--latency S] [--reset-every BYTES] [--outage-every S] [--outage-for S]
       [--hub-side rst|fin] [--log FILE]
"""
import argparse
import asyncio
import json
import signal
import socket
import struct
import time

from child_lifetime import exit_with_parent


class Link:
    def __init__(self, a):
        self.a = a
        self.tokens = 0.0
        self.last = time.monotonic()
        self.start = time.monotonic()
        self.upstream = 0
        self.downstream = 0
        self.resets = 0
        self.connections = 0
        self.first_connection = None
        self.next_reset = a.reset_every if a.reset_every > 0 else None
        self.timeline = []  # (seconds since start, upstream bytes)
        self.log = open(a.log, "w", buffering=1) if a.log else None

    def in_outage(self):
        if self.a.outage_every <= 0 or self.first_connection is None:
            return False
        t = (time.monotonic() - self.start - self.first_connection) % self.a.outage_every
        return t >= self.a.outage_every - self.a.outage_for

    async def take(self, want):
        """Waits for link capacity and returns how many bytes may move now."""
        while True:
            if self.in_outage():
                await asyncio.sleep(0.05)
                continue
            now = time.monotonic()
            self.tokens = min(self.a.rate * 0.05, self.tokens + (now - self.last) * self.a.rate)
            self.last = now
            if self.tokens >= 1:
                n = int(min(want, self.tokens))
                self.tokens -= n
                return n
            await asyncio.sleep(max(0.005, (1 - self.tokens) / self.a.rate))

    def stats(self):
        return {"upstream_bytes": self.upstream, "downstream_bytes": self.downstream,
                "resets": self.resets, "connections": self.connections,
                "elapsed": time.monotonic() - self.start, "first_connection_s": self.first_connection}


def abort(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


def close_gracefully(writer):
    """FIN after what the transport already holds; nothing more is queued."""
    try:
        writer.write_eof()
    except (OSError, RuntimeError):
        pass
    writer.close()


async def pump(link, reader, writer, upstream, conn):
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            if data is None:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            while link.in_outage():
                await asyncio.sleep(0.05)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        await forward(link, reader, upstream, conn, queue)
    except (ConnectionError, OSError):
        pass
    try:
        # Bytes already on the link still arrive when the sender hangs up;
        # only a reset (conn["dead"]) loses them.
        await queue.put((0, None))
        if not conn["dead"]:
            await sender
            writer.write_eof()
    except (ConnectionError, OSError, asyncio.CancelledError):
        pass
    finally:
        sender.cancel()


async def forward(link, reader, upstream, conn, queue):
    while not conn["dead"]:
        n = await link.take(16384)
        data = await reader.read(n)
        if not data:
            break
        # Unused capacity goes back: the read may return less than granted.
        link.tokens += n - len(data)
        if link.log:
            for line in data.split(b"\r\n"):
                if line[:5] in (b"PATCH", b"POST ", b"HEAD ", b"OPTIO", b"HTTP/") or line.lower().startswith((b"upload-offset", b"content-length")):
                    link.log.write(f"{time.monotonic() - link.start:8.2f} c{conn['id']} {'>' if upstream else '<'} {line[:80].decode('latin-1')}\n")
        if upstream:
            conn["up"] = conn.get("up", 0) + len(data)
            link.upstream += len(data)
            link.timeline.append((round(time.monotonic() - link.start, 3), link.upstream))
            if link.next_reset is not None and link.upstream >= link.next_reset:
                link.next_reset += link.a.reset_every
                link.resets += 1
                if link.log:
                    link.log.write(f"{time.monotonic() - link.start:8.2f} c{conn['id']} RESET after {conn['up']} B on this connection\n")
                conn["dead"] = True
                abort(conn["client"])
                if link.a.hub_side == "fin":
                    close_gracefully(conn["server"])
                else:
                    abort(conn["server"])
                break
        else:
            link.downstream += len(data)
        await queue.put((time.monotonic() + link.a.latency, data))


async def handle(link, a, client_reader, client_writer):
    link.connections += 1
    if link.first_connection is None:
        link.first_connection = time.monotonic() - link.start
    host, port = a.target.rsplit(":", 1)
    try:
        server_reader, server_writer = await asyncio.open_connection(host, int(port))
    except OSError:
        abort(client_writer)
        return
    conn = {"dead": False, "client": client_writer, "server": server_writer, "id": link.connections, "up": 0}
    await asyncio.gather(pump(link, client_reader, server_writer, True, conn),
                         pump(link, server_reader, client_writer, False, conn),
                         return_exceptions=True)
    if link.log:
        link.log.write(f"{time.monotonic() - link.start:8.2f} c{conn['id']} closed, {conn['up']} B upstream\n")
    for w in (client_writer, server_writer):
        try:
            w.close()
        except Exception:
            pass


async def main(a):
    link = Link(a)
    server = await asyncio.start_server(lambda r, w: handle(link, a, r, w), "127.0.0.1", a.listen_port)
    port = server.sockets[0].getsockname()[1]

    def dump():
        s = link.stats()
        if a.timeline:
            s["timeline"] = link.timeline
        with open(a.stats + ".tmp", "w") as f:
            json.dump(s, f)
        import os
        os.replace(a.stats + ".tmp", a.stats)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(f"READY {port}", flush=True)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass
        dump()
    dump()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--target", required=True)
    p.add_argument("--stats", required=True)
    p.add_argument("--listen-port", type=int, default=0)
    p.add_argument("--rate", type=float, default=16000)
    p.add_argument("--latency", type=float, default=0.3)
    p.add_argument("--reset-every", type=int, default=200_000)
    p.add_argument("--outage-every", type=float, default=0)
    p.add_argument("--outage-for", type=float, default=0)
    p.add_argument("--timeline", action="store_true")
    p.add_argument("--hub-side", choices=["rst", "fin"], default="rst",
                   help="how a reset reaches the server: RST (default) or FIN after what reached it")
    p.add_argument("--log", help="write each connection's requests, responses and resets here")
    exit_with_parent()
    asyncio.run(main(p.parse_args()))
