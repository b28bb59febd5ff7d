#!/usr/bin/env python3
"""The comparison client: the official Python tus client (tuspy) with
retries, uploading the same files in the same order.

usage: tuspy_upload.py URL FILE...
"""
import sys
import time

from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed


def main(url, files):
    c = tus_client.TusClient(url)
    for path in files:
        name = path.rsplit("/", 1)[-1]
        meta = {"filename": name, "filetype": "image/jpeg"}
        # tuspy's own retry loop: on failure it asks the server for the
        # offset and continues. Retries are generous so it always finishes;
        # an outer loop covers errors raised outside that loop.
        while True:
            try:
                up = c.uploader(path, metadata=meta, retries=1000, retry_delay=1,
                                chunk_size=256 * 1024)
                up.upload()
                break
            except (TusCommunicationError, TusUploadFailed, OSError) as e:
                print(f"tuspy: {name}: {e}; starting again", file=sys.stderr)
                time.sleep(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
