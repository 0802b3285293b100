"""The store's SQLite database: schema, migrations, per-thread connections and transactions.

SQLite runs in WAL mode with a busy timeout, so readers never block the writer and two lorry
processes take turns writing. Every change happens inside :meth:`Database.tx`, which opens the
transaction with ``BEGIN IMMEDIATE`` (take the write lock first, so two writers never deadlock
on a lock upgrade); the threads of one process queue for it on a lock of their own first. A
kill mid-transaction leaves the previous state: SQLite rolls it back.

Thread safety: each thread gets its own connection (a ``sqlite3`` connection must not be shared
between threads); :meth:`Database.close` closes them all. The schema version is SQLite's
``user_version``; :data:`MIGRATIONS` lists the steps from one version to the next.

Damage: before the first write, :func:`database_damage` checks the file read-only. A database
that is missing or empty while blobs exist, is not SQLite, fails ``PRAGMA quick_check`` or lacks
the schema its version promises is refused with one :class:`StoreError` line that says to run
``lorry fsck --repair``; it is never re-created over existing blobs (docs/store.md).
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lorry.errors import DiskFullError, StoreError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Database",
    "damage_message",
    "database_damage",
    "open_read_only",
]

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

# Version 2: when each blob's bytes were last hashed and found right, by the file's identity
# (inode, size, ctime, mtime): any write to the file changes its ctime, so a blob whose stat
# still matches needs no re-hash to be reused ("verified since it was last written").
_V2 = """
CREATE TABLE blob_verified (
  digest TEXT PRIMARY KEY, size INTEGER NOT NULL, inode INTEGER NOT NULL,
  ctime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, verified REAL NOT NULL);
"""

# Version 3: a layer's DiffID may be its config's claim, checked later (issue 11): ``verified``
# is when the store inflated the blob and found that DiffID (NULL: not yet), ``bad_diff_id``
# what the content hashed to instead (the layer is then bad). Layers of older stores had their
# DiffIDs computed at ingest: verified when they were registered.
_V3 = """
ALTER TABLE layers ADD COLUMN verified REAL;
ALTER TABLE layers ADD COLUMN bad_diff_id TEXT;
UPDATE layers SET verified = created;
ALTER TABLE distmeta ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
"""

#: SQL scripts; running MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
#: The schema version this code writes.
SCHEMA_VERSION = len(MIGRATIONS)


#: The first 16 bytes of every SQLite 3 database file.
_MAGIC = b"SQLite format 3\x00"
#: SQLite's result codes for a damaged file (``sqlite3`` exposes them since Python 3.11).
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


def damage_message(path: Path, reason: str) -> str:
    """The one line that reports a damaged database and says how to repair it."""
    return f"store database {path} {reason}: run 'lorry fsck --repair' to rebuild it from the blobs"


def _is_damage(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file itself is bad (not busy, full or unreachable)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code in _DAMAGE_CODES or "malformed" in str(exc)


def _sql_error(exc: sqlite3.Error, path: Path) -> StoreError:
    text = str(exc)
    if "is full" in text:
        return DiskFullError(f"writing store database {path}: no space left on device")
    if _is_damage(exc):
        return StoreError(damage_message(path, f"is damaged ({text})"))
    return StoreError(f"store database {path}: {text}")


def open_read_only(path: Path) -> sqlite3.Connection:
    """A connection that can never write to ``path`` (nor checkpoint its WAL into it)."""
    uri = f"{path.absolute().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


@functools.cache
def _expected_schema(version: int) -> dict[str, tuple[str, ...]]:
    """Table → column names that schema ``version`` has (built from :data:`MIGRATIONS`)."""
    conn = sqlite3.connect(":memory:")
    try:
        for script in MIGRATIONS[:version]:
            conn.executescript(script)
        return _schema(conn)
    finally:
        conn.close()


def _schema(conn: sqlite3.Connection) -> dict[str, tuple[str, ...]]:
    """Table → column names of the database behind ``conn`` (reading it fails if unreadable)."""
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    out: dict[str, tuple[str, ...]] = {}
    for name in names:
        quoted = '"' + str(name).replace('"', '""') + '"'
        out[str(name)] = tuple(str(r[1]) for r in conn.execute(f"PRAGMA table_info({quoted})"))
    return out


def database_damage(path: Path, has_content: Callable[[], bool]) -> str | None:
    """Why the database at ``path`` cannot be trusted, or None when it is sound or not made yet.

    Never writes to the file. ``has_content`` says whether the store holds blobs: only then is
    a missing, empty or schema-less database damage (without blobs it had nothing to lose, and
    a process killed while creating the store leaves exactly that).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "is missing but the store holds blobs" if has_content() else None
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "is empty (0 bytes) but the store holds blobs" if has_content() else None
    try:
        with open(path, "rb") as f:
            head = f.read(len(_MAGIC))
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if head != _MAGIC:
        return "is not an SQLite database"
    try:
        conn = open_read_only(path)
        try:
            check = conn.execute("PRAGMA quick_check(1)").fetchone()
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            found = _schema(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if _is_damage(exc):
            return f"is unreadable ({' '.join(str(exc).split())})"
        raise _sql_error(exc, path) from exc
    if check is None or check[0] != "ok":
        text = str(check[0]) if check else "no answer"
        text = " ".join(text.replace("*** in database main ***", "").split())
        return f"fails PRAGMA quick_check ({text})"
    if version > SCHEMA_VERSION:
        return None  # a newer lorry's database: Database refuses it with "upgrade lorry"
    if version == 0:
        if found:
            return "has tables but no lorry schema version"
        return "has no tables but the store holds blobs" if has_content() else None
    for table, columns in _expected_schema(version).items():
        if table not in found:
            return f"lacks the table {table} of schema version {version}"
        if found[table] != columns:
            return f"has table {table} with columns {found[table]}, not {columns}"
    return None


class Database:
    """The SQLite metadata database of one store; safe to share between threads.

    ``has_content`` says whether the store holds blobs (see :func:`database_damage`); a damaged
    database raises :class:`StoreError` before anything is written to it.
    """

    def __init__(self, path: Path, *, has_content: Callable[[], bool] = lambda: False) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._writer = threading.Lock()
        reason = database_damage(path, has_content)
        if reason is not None:
            raise StoreError(damage_message(path, reason))
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
        # Threads of this process take turns here, not in SQLite's busy handler: that one
        # sleeps 1, 2, 5, 10, 15… ms between polls while another thread holds the write lock
        # for a fraction of a millisecond (a 40-layer pull slept ≈ 0.5 s in it). Other
        # processes still meet at the busy timeout.
        if not self._writer.acquire(timeout=BUSY_TIMEOUT_MS / 1000):
            raise StoreError(f"store database {self.path}: database is locked by another thread")
        try:
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
        finally:
            self._writer.release()

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
