#!/usr/bin/env python3
"""An independent tus 1.0 server (aiohttp-tus from PyPI) for interoperability
tests. Prints "READY <port>" once listening. Completed uploads land in
STORE/<filename>; their tus metadata, decoded, in STORE/<filename>.metadata.json.

usage: aiohttp_tus_server.py STORE_DIR
"""
import asyncio
import base64
import json
import sys
import time
from pathlib import Path

from aiohttp import web
from aiohttp_tus import setup_tus

from child_lifetime import exit_with_parent


async def main(store: Path) -> None:
    async def on_done(request, resource, file_path):
        meta = {}
        for pair in resource.metadata_header.split(","):
            key, _, value = pair.strip().partition(" ")
            meta[key] = base64.b64decode(value).decode() if value else ""
        Path(str(file_path) + ".metadata.json").write_text(json.dumps(meta))

    app = setup_tus(web.Application(client_max_size=64 * 1024 * 1024),
                    upload_path=store, upload_url="/uploads", on_upload_done=on_done)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    print(f"READY {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    store = Path(sys.argv[1])
    store.mkdir(parents=True, exist_ok=True)
    exit_with_parent()
    asyncio.run(main(store))
