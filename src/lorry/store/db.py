"""The store's SQLite database: schema, migrations, per-thread connections and transactions.

SQLite runs in WAL mode with a busy timeout, so readers never block the writer and two lorry
processes take turns writing. Every change happens inside :meth:`Database.tx`, which opens the
transaction with ``BEGIN IMMEDIATE`` (take the write lock first, so two writers never deadlock
on a lock upgrade). A kill mid-transaction leaves the previous state: SQLite rolls it back.

Thread safety: each thread gets its own connection (a ``sqlite3`` connection must not be shared
between threads); :meth:`Database.close` closes them all. The schema version is SQLite's
``user_version``; :data:`MIGRATIONS` lists the steps from one version to the next.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lorry.errors import DiskFullError, StoreError

__all__ = ["BUSY_TIMEOUT_MS", "MIGRATIONS", "SCHEMA_VERSION", "Database"]

#: How long a writer waits for another process's write transaction, in milliseconds.
BUSY_TIMEOUT_MS = 60_000

_V1 = """
CREATE TABLE blob_info (
  digest TEXT PRIMARY KEY, size INTEGER NOT NULL, media_type TEXT,
  diff_id TEXT, uncompressed_size INTEGER, created REAL NOT NULL);
CREATE TABLE layers (
  chain_id TEXT PRIMARY KEY, diff_id TEXT NOT NULL, blob_digest TEXT NOT NULL,
  media_type TEXT NOT NULL, parent TEXT REFERENCES layers(chain_id), size INTEGER NOT NULL,
  blob_size INTEGER NOT NULL, refcount INTEGER NOT NULL DEFAULT 0, created REAL NOT NULL);
CREATE INDEX layers_parent ON layers(parent);
CREATE INDEX layers_blob ON layers(blob_digest);
CREATE TABLE images (
  id TEXT PRIMARY KEY, top_layer TEXT REFERENCES layers(chain_id), created REAL NOT NULL);
CREATE TABLE image_manifests (
  image_id TEXT NOT NULL REFERENCES images(id), digest TEXT NOT NULL, media_type TEXT NOT NULL,
  PRIMARY KEY (image_id, digest));
CREATE TABLE refs (
  name TEXT NOT NULL, tag TEXT NOT NULL DEFAULT '', digest TEXT NOT NULL DEFAULT '',
  image_id TEXT NOT NULL REFERENCES images(id), created REAL NOT NULL,
  PRIMARY KEY (name, tag, digest));
CREATE INDEX refs_image ON refs(image_id);
CREATE TABLE distmeta (
  diff_id TEXT NOT NULL, blob_digest TEXT NOT NULL, registry TEXT NOT NULL,
  repository TEXT NOT NULL, hmac TEXT NOT NULL DEFAULT '', updated REAL NOT NULL,
  PRIMARY KEY (diff_id, blob_digest, registry, repository));
CREATE INDEX distmeta_blob ON distmeta(blob_digest);
"""

#: SQL scripts; running MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: tuple[str, ...] = (_V1,)
#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


def _sql_error(exc: sqlite3.Error, path: Path) -> StoreError:
    text = str(exc)
    if "is full" in text:
        return DiskFullError(f"writing store database {path}: no space left on device")
    return StoreError(f"store database {path}: {text}")


class Database:
    """The SQLite metadata database of one store; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._migrate()

    def conn(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; use :meth:`tx` for changes)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")
            except sqlite3.Error as exc:
                raise _sql_error(exc, self.path) from exc
            self._local.conn = conn
            self._local.depth = 0
            with self._guard:
                self._all.append(conn)
        return conn

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (nested calls join the outer one); rolled back on error."""
        conn = self.conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield conn
            finally:
                self._local.depth -= 1
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _sql_error(exc, self.path) from exc
        self._local.depth = 1
        try:
            yield conn
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            self._rollback(conn)
            raise _sql_error(exc, self.path) from exc
        except BaseException:
            self._rollback(conn)
            raise
        finally:
            self._local.depth = 0

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        """Run a read-only statement and return every row (as ``sqlite3.Row``)."""
        conn = self.conn()
        try:
            cur = conn.execute(sql, args)
            cur.row_factory = sqlite3.Row
            return list(cur.fetchall())
        except sqlite3.Error as exc:
            raise _sql_error(exc, self.path) from exc

    def close(self) -> None:
        """Close every connection opened by any thread."""
        with self._guard:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()

    @staticmethod
    def _rollback(conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled it back itself
            conn.execute("ROLLBACK")

    def _migrate(self) -> None:
        with self.tx() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"store database {self.path} has schema version {version}; this lorry "
                    f"understands up to {SCHEMA_VERSION}: upgrade lorry"
                )
            for step in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {step + 1}")
