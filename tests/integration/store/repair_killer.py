"""The victim of the repair kill test: run ``lorry.store.repair.repair`` on a store, SIGKILLing
itself at a chosen point.

``<rename|fsync|sql>:K`` kills at the K-th call of ``os.rename``, ``os.fsync`` or the K-th SQL
statement; ``count`` runs the whole repair and prints how many calls of each it made.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

_counts = {"rename": 0, "fsync": 0, "sql": 0}


def _maybe_die(kind: str, at: tuple[str, int] | None) -> None:
    _counts[kind] += 1
    if at is not None and at == (kind, _counts[kind]):
        os.kill(os.getpid(), signal.SIGKILL)


def _instrument(at: tuple[str, int] | None) -> None:
    real_rename, real_fsync, real_connect = os.rename, os.fsync, sqlite3.connect

    def rename(src: Any, dst: Any) -> None:
        _maybe_die("rename", at)
        real_rename(src, dst)

    def fsync(fd: int) -> None:
        _maybe_die("fsync", at)
        real_fsync(fd)

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(lambda _sql: _maybe_die("sql", at))
        return conn

    os.rename, os.fsync = rename, fsync  # type: ignore[assignment]
    sqlite3.connect = connect  # type: ignore[assignment]


def main(root: str, spec: str) -> None:
    """Repair the store at ``root``, dying where ``spec`` says."""
    at = None
    if spec != "count":
        kind, _, k = spec.partition(":")
        at = (kind, int(k))
    _instrument(at)
    from lorry.store.repair import repair
    from lorry.store.root import StoreLayout

    report = repair(StoreLayout(Path(root)))
    print("counts " + json.dumps(_counts))
    print(f"images {len(report.images)}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
