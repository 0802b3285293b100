"""Database.tx: the threads of one process queue for the write lock themselves.

SQLite's busy handler, which they used to meet at, sleeps 1, 2, 5, 10… ms between polls; with
the busy timeout at zero it would fail at once instead, so a write transaction that never fails
here never reached it.
"""

from __future__ import annotations

import threading
from pathlib import Path

from lorry.store.db import Database

THREADS = 6
WRITES = 40


def test_concurrent_writers_never_meet_the_busy_handler(tmp_path: Path) -> None:
    db = Database(tmp_path / "lorry.db")
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def writer(n: int) -> None:
        try:
            own = db.conn()  # this thread's connection, which tx() uses
            own.execute("PRAGMA busy_timeout = 0")  # busy: fail now, never sleep
            own.execute("PRAGMA synchronous = OFF")  # this tests locking, not durability
            start.wait()
            for i in range(WRITES):
                with db.tx() as conn:
                    conn.execute(
                        "INSERT INTO blob_info VALUES (?, 0, NULL, NULL, NULL, 0)", (f"{n}/{i}",)
                    )
                    with db.tx() as inner:  # a nested transaction joins the outer one
                        inner.execute("SELECT count(*) FROM blob_info").fetchone()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert db.query("SELECT count(*) FROM blob_info")[0][0] == THREADS * WRITES
    finally:
        db.close()
