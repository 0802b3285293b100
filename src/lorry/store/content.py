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
import time
from collections.abc import Iterator
from typing import BinaryIO

from lorry.digest import DiffID, Digest
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
    ) -> BlobWriter:
        """Open (or wait for, or resume) the ingest of ``digest``; see :class:`IngestWriter`."""
        return IngestWriter(self, digest, size, media_type=media_type, on_wait=on_wait)

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

    def delete(self, digest: Digest) -> bool:
        """Remove a committed blob and its info row; False when it was not there."""
        path = self.layout.blob(digest)
        with self.db.tx() as conn:
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
        """Remember what an ingest learnt about a blob it committed (used by the writer)."""
        with self.db.tx() as conn:
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
        diff, usize = tap.finish()
        return self.record(digest, info.size, media_type, diff, usize)
