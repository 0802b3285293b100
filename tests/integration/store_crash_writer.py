"""The writer of the store crash test: ingest + commit + register + create + tag one image.

Run as a script it does the whole operation once, optionally SIGKILLing itself at a chosen
point: ``bytes:N`` after N chunks of the layer are written, or ``<fsync|replace|sql>:K`` at the
K-th call of ``os.fsync``, ``os.replace`` or the K-th SQL statement (``count`` prints how many
calls a full run makes). After each chunk it prints how many bytes it has handed to the store,
so the test knows what must be reused. Imported, :func:`run` does the same without killing.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

CHUNK = 64 * 1024
_counts = {"fsync": 0, "replace": 0, "sql": 0}


def _maybe_die(kind: str, at: tuple[str, int] | None) -> None:
    _counts[kind] += 1
    if at is not None and at == (kind, _counts[kind]):
        os.kill(os.getpid(), signal.SIGKILL)


def _instrument(at: tuple[str, int] | None) -> None:
    real_fsync, real_replace, real_connect = os.fsync, os.replace, sqlite3.connect

    def fsync(fd: int) -> None:
        _maybe_die("fsync", at)
        real_fsync(fd)

    def replace(src: Any, dst: Any) -> None:
        _maybe_die("replace", at)
        real_replace(src, dst)

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(lambda _sql: _maybe_die("sql", at))
        return conn

    os.fsync, os.replace = fsync, replace  # type: ignore[assignment]
    sqlite3.connect = connect  # type: ignore[assignment]


def run(plan: dict[str, Any], kill_after_chunks: int | None = None) -> dict[str, Any]:
    """Do the operation of ``plan``; return what the layer writer found on disk."""
    from lorry.digest import Digest
    from lorry.store import Store

    blob = Digest.parse(plan["blob"])
    data = Path(plan["layer_path"]).read_bytes()
    with Store.open(plan["root"]) as store, store.hold():
        with store.content.writer(blob, len(data), media_type=plan["media_type"]) as w:
            found = {"exists": w.exists, "resumed": w.resumed}
            if not w.exists:
                chunks = 0
                while w.offset < len(data):
                    if kill_after_chunks is not None and chunks == kill_after_chunks:
                        os.kill(os.getpid(), signal.SIGKILL)
                    w.write(data[w.offset : w.offset + CHUNK])
                    chunks += 1
                    if kill_after_chunks is not None:
                        print(f"handed {w.offset}", flush=True)
                w.commit()
        layer = store.layers.register(blob, None, media_type=plan["media_type"])
        config = store.content.put_bytes(plan["config"].encode())
        image = store.images.create(config.digest)
        store.refs.add_tag(plan["name"], plan["tag"], image.id)
        found["chain_id"] = str(layer.chain_id)
        return found


def main() -> None:
    """Script entry: ``store_crash_writer.py PLAN.json KILLSPEC``."""
    plan = json.loads(Path(sys.argv[1]).read_text())
    spec = sys.argv[2]
    kind, _, num = spec.partition(":")
    if kind == "bytes":
        _instrument(None)
        run(plan, kill_after_chunks=int(num))
    elif kind == "count":
        _instrument(None)
        _counts.update(fsync=0, replace=0, sql=0)
        run(plan)
        print("counts " + json.dumps(_counts), flush=True)
    else:
        _instrument((kind, int(num)))
        run(plan)
    print("done", flush=True)


if __name__ == "__main__":
    main()
