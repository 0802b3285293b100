"""The content store: blobs addressed by digest, written through resumable, verified ingests.

Committed blobs live at ``blobs/<alg>/<hex>`` and never change; a blob appears only by the
atomic rename at the end of a verified ingest (see :mod:`lorry.store.ingest`). What the store
learnt about a blob while writing it (its media type and, for a layer, the DiffID and
uncompressed size computed from the bytes) is kept in the ``blob_info`` table.

:class:`~lorry.store.protocols.ContentStore` is the contract (with the :class:`BlobWriter` it
hands out); :class:`LocalContentStore` the implementation on a local directory.
``lorry.testing.store_conformance`` checks any implementation against the contract.
Thread safety: a store object may be used by many threads at once; each writer by one thread.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from typing import BinaryIO

import zstandard

from lorry.digest import DiffID, Digest, Hasher
from lorry.errors import InvalidInputError, NotFoundError
from lorry.store.db import Database
from lorry.store.fsutil import fsync_dir, os_error
from lorry.store.ingest import READ_CHUNK, IngestWriter
from lorry.store.locks import WaitHook
from lorry.store.protocols import BlobInfo, BlobWriter, ContentStore
from lorry.store.root import StoreLayout
from lorry.streams import DiffIDTap, compression_for

__all__ = ["BlobInfo", "ContentStore", "LocalContentStore"]


class LocalContentStore:
    """A :class:`ContentStore` in a local directory, with metadata in the store database."""

    def __init__(self, layout: StoreLayout, db: Database) -> None:
        self.layout = layout
        self.db = db

    def exists(self, digest: Digest) -> bool:
        """True when the blob is committed."""
        return self.layout.blob(digest).is_file()

    def info(self, digest: Digest) -> BlobInfo:
        """The committed blob's info; NotFoundError when absent."""
        try:
            size = self.layout.blob(digest).stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} not found in store {self.layout.root}") from None
        except OSError as exc:
            raise os_error(exc, "reading", self.layout.blob(digest)) from exc
        rows = self.db.query(
            "SELECT media_type, diff_id, uncompressed_size FROM blob_info WHERE digest = ?",
            (str(digest),),
        )
        if not rows:
            return BlobInfo(digest, size)
        row = rows[0]
        diff = DiffID(Digest.parse(row["diff_id"])) if row["diff_id"] else None
        return BlobInfo(digest, size, row["media_type"], diff, row["uncompressed_size"])

    def open_blob(self, digest: Digest) -> BinaryIO:
        """A binary file open for reading the committed blob; NotFoundError when absent."""
        path = self.layout.blob(digest)
        try:
            return open(path, "rb")  # the caller owns and closes it
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest} not found in store {self.layout.root}") from None
        except OSError as exc:
            raise os_error(exc, "opening", path) from exc

    def read_bytes(self, digest: Digest) -> bytes:
        """The whole committed blob (for small blobs: configs, manifests)."""
        with self.open_blob(digest) as f:
            return f.read()

    def writer(
        self,
        digest: Digest,
        size: int | None = None,
        *,
        media_type: str | None = None,
        on_wait: WaitHook | None = None,
        diff_ids: bool = True,
    ) -> BlobWriter:
        """Open (or wait for, or resume) the ingest of ``digest``; see :class:`IngestWriter`.

        ``diff_ids`` False: a layer is not inflated while written (its DiffID is learnt later,
        by :meth:`layer_info`, where it is inflated anyway).
        """
        return IngestWriter(
            self, digest, size, media_type=media_type, on_wait=on_wait, diff_ids=diff_ids
        )

    def estimated_size(self, digest: Digest, media_type: str) -> int:
        """The layer's uncompressed size as its compressed stream declares it, without inflating.

        gzip's trailer (the size modulo 4 GiB of the last member), zstd's frame header when it
        has one, else the blob's own size: for display only until the layer is inflated.
        """
        path = self.layout.blob(digest)
        compression = compression_for(media_type)
        try:
            with open(path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if compression == "gzip" and size >= 18:
                    f.seek(size - 4)
                    return int.from_bytes(f.read(4), "little")
                if compression == "zstd":
                    declared = zstandard.frame_content_size(f.read(18))
                    return declared if declared >= 0 else size
                return size
        except (OSError, zstandard.ZstdError):
            return 0

    def put_bytes(
        self, data: bytes, *, media_type: str | None = None, expected: Digest | None = None
    ) -> BlobInfo:
        """Store ``data`` in one go (checked against ``expected`` when given)."""
        digest = expected or Digest.of(data)
        with self.writer(digest, len(data), media_type=media_type) as w:
            if not w.exists:
                w.restart()
                w.write(data)
            return w.commit()

    def is_sound(self, digest: Digest, size: int) -> bool:
        """The committed blob has ``size`` bytes that hash to ``digest``.

        Cheap when the file is unchanged since its bytes were last verified (same inode, size,
        ctime and mtime as recorded then); otherwise the file is hashed again, and recorded as
        verified when it is right. False for a missing, short, long or corrupt blob.
        """
        path = self.layout.blob(digest)
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise os_error(exc, "reading", path) from exc
        if st.st_size != size:
            return False
        rows = self.db.query(
            "SELECT size, inode, ctime_ns, mtime_ns FROM blob_verified WHERE digest = ?",
            (str(digest),),
        )
        if rows and tuple(rows[0]) == _identity(st):
            return True
        hasher = Hasher(digest.algorithm)
        try:
            with open(path, "rb") as f:
                while chunk := f.read(READ_CHUNK):
                    hasher.update(chunk)
                after = os.fstat(f.fileno())
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise os_error(exc, "reading", path) from exc
        if hasher.digest() != digest:
            return False
        with self.db.tx() as conn:
            _mark_verified(conn, digest, after)
        return True

    def delete(self, digest: Digest) -> bool:
        """Remove a committed blob and its info row; False when it was not there."""
        path = self.layout.blob(digest)
        with self.db.tx() as conn:
            conn.execute("DELETE FROM blob_verified WHERE digest = ?", (str(digest),))
            conn.execute("DELETE FROM blob_info WHERE digest = ?", (str(digest),))
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise os_error(exc, "deleting", path) from exc
        fsync_dir(path.parent)
        return True

    def walk(self) -> Iterator[Digest]:
        """Every committed blob's digest (files with other names are skipped)."""
        for alg_dir in sorted(self.layout.blobs.iterdir()):
            for entry in sorted(os.listdir(alg_dir)):
                try:
                    yield Digest(alg_dir.name, entry)
                except InvalidInputError:
                    continue

    def record(
        self,
        digest: Digest,
        size: int,
        media_type: str | None,
        diff_id: Digest | None,
        uncompressed_size: int | None,
    ) -> BlobInfo:
        """Remember what an ingest learnt about a blob it committed (used by the writer).

        The writer verified the bytes it committed, so the file is recorded as verified too.
        """
        path = self.layout.blob(digest)
        try:
            st: os.stat_result | None = path.stat()
        except OSError:
            st = None  # deleted already (a concurrent prune): nothing to vouch for
        return self._remember(digest, size, media_type, diff_id, uncompressed_size, verified=st)

    def _remember(
        self,
        digest: Digest,
        size: int,
        media_type: str | None,
        diff_id: Digest | None,
        uncompressed_size: int | None,
        *,
        verified: os.stat_result | None,
    ) -> BlobInfo:
        """Write the blob's info row (and, when given, its verified identity) in one step."""
        with self.db.tx() as conn:
            if verified is not None:
                _mark_verified(conn, digest, verified)
            conn.execute(
                "INSERT OR REPLACE INTO blob_info VALUES (?, ?, ?, ?, ?, ?)",
                (
                    str(digest),
                    size,
                    media_type,
                    str(diff_id) if diff_id else None,
                    uncompressed_size,
                    time.time(),
                ),
            )
        diff = DiffID(diff_id) if diff_id else None
        return BlobInfo(digest, size, media_type, diff, uncompressed_size)

    def layer_info(self, digest: Digest, media_type: str) -> BlobInfo:
        """The blob's info with its DiffID; computed from the bytes once if not known yet.

        The normal path learns the DiffID while ingesting; this pass over the file is only for
        blobs committed without a layer media type or before an interrupted bookkeeping step.
        """
        info = self.info(digest)
        if info.diff_id is not None:
            return info
        compression = compression_for(media_type)
        if compression is None:
            raise InvalidInputError(f"blob {digest}: {media_type!r} is not a layer media type")
        tap = DiffIDTap(compression, f"layer blob {digest}")
        with self.open_blob(digest) as f:
            while chunk := f.read(READ_CHUNK):
                tap.update(chunk)
        diff, usize = tap.finish()  # the inflated bytes were read, not the digest checked
        return self._remember(digest, info.size, media_type, diff, usize, verified=None)


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    """What changes whenever a file's bytes may have: size, inode, ctime and mtime."""
    return (st.st_size, st.st_ino, st.st_ctime_ns, st.st_mtime_ns)


def _mark_verified(conn: sqlite3.Connection, digest: Digest, st: os.stat_result) -> None:
    """Record that the file with this identity held the right bytes (inside a transaction)."""
    conn.execute(
        "INSERT OR REPLACE INTO blob_verified VALUES (?, ?, ?, ?, ?, ?)",
        (str(digest), *_identity(st), time.time()),
    )
