"""The floor of a pull on lorry's stack: a bare client, no lorry code (benchmarks/pull.py).

Imports what any client built on lorry's mandated stack loads (asyncio, anyio and its asyncio
backend, click, sqlite3, http.client, hashlib, json), then fetches the image's manifest, config
and layers with plain ``http.client`` on ``--threads`` threads, verifying every blob's sha256
and writing it to ``DEST``. No store, no database, no progress, no retries: what is left when
lorry's own work is taken away. Exits 1 naming the blob when a digest does not match.
Run: ``python _floor_fetch.py HOST:PORT REPO TAG DEST [--threads N]``.
"""

from __future__ import annotations

import argparse
import asyncio  # noqa: F401  (the stack's imports are part of the floor)
import hashlib
import http.client
import json
import sqlite3  # noqa: F401
import sys
import threading
from pathlib import Path

import anyio
import anyio._backends._asyncio
import anyio.from_thread
import anyio.to_thread  # noqa: F401
import click  # noqa: F401

CHUNK = 1 << 20
ACCEPT = ",".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)


def _get(
    conn: http.client.HTTPConnection, path: str, accept: str = "*/*"
) -> http.client.HTTPResponse:
    conn.request("GET", path, headers={"Accept": accept})
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"GET {path}: HTTP {resp.status}")
    return resp


def main() -> int:
    """Fetch and verify every blob of REPO:TAG; exit 0, or 1 naming a blob that did not match."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("registry")
    parser.add_argument("repo")
    parser.add_argument("tag")
    parser.add_argument("dest", type=Path)
    parser.add_argument("--threads", type=int, default=3)
    ns = parser.parse_args()
    host, port = ns.registry.rsplit(":", 1)
    manifest = json.loads(
        _get(
            http.client.HTTPConnection(host, int(port)), f"/v2/{ns.repo}/manifests/{ns.tag}", ACCEPT
        ).read()
    )
    todo = [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]
    ns.dest.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    failed: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(host, int(port))
        while True:
            with lock:
                if not todo:
                    return
                digest = todo.pop(0)
            resp = _get(conn, f"/v2/{ns.repo}/blobs/{digest}")
            hasher = hashlib.sha256()
            with (ns.dest / digest.split(":", 1)[1]).open("wb") as out:
                while chunk := resp.read(CHUNK):
                    hasher.update(chunk)
                    out.write(chunk)
            if f"sha256:{hasher.hexdigest()}" != digest:
                failed.append(digest)

    threads = [threading.Thread(target=worker) for _ in range(ns.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        print(f"digest mismatch: {failed[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
