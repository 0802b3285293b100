"""Local files on both sides of a copy, one way each.

:class:`FileBlobStream` reads a blob from a file (a layout blob, a tar member, a store blob) as
a :class:`~lorry.transports.BlobStream`. :class:`DirectoryBlobs` writes blobs into a
``blobs/ALG/HEX`` directory through the store's own resumable, verifying, locked
:class:`~lorry.store.ingest.IngestWriter`; :func:`write_blob` is the one loop that feeds any
:class:`~lorry.store.protocols.BlobWriter` from a source.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lorry.digest import Digest, Verifier
from lorry.errors import CancelledError, IntegrityError, InvalidInputError, NotFoundError
from lorry.oci import Descriptor
from lorry.store.fsutil import os_error
from lorry.store.ingest import READ_CHUNK, IngestWriter
from lorry.store.protocols import BlobInfo, BlobWriter
from lorry.store.root import StoreLayout
from lorry.transports.protocols import BlobOpener, WaitHook

__all__ = ["DirectoryBlobs", "FileBlobStream", "write_blob"]


class FileBlobStream:
    """``length`` bytes (None: to the end) of ``path`` from ``offset``, in 1 MiB chunks.

    The file is opened at once, so a missing blob is a NotFoundError naming it before any
    transfer starts. A file shorter than ``length`` is an InvalidInputError (a truncated
    archive); :meth:`abort` makes the next chunk raise CancelledError. A ``verifier`` sees
    every chunk and is checked at the end of the file (IntegrityError naming the file), so a
    file whose bytes do not match its name fails at its source, not at the destination.
    """

    def __init__(
        self,
        path: Path,
        offset: int = 0,
        length: int | None = None,
        what: str = "",
        verifier: Verifier | None = None,
    ) -> None:
        self.path = path
        self._what = what or f"blob file {path}"
        self._left = length
        self._verifier = verifier
        self._aborted = threading.Event()
        try:
            self._file: IO[bytes] | None = path.open("rb")
        except FileNotFoundError:
            raise NotFoundError(f"{self._what}: {path} does not exist") from None
        except OSError as exc:
            raise os_error(exc, "opening", path) from exc
        try:
            self._file.seek(offset)
        except OSError as exc:
            self.close()
            raise os_error(exc, "seeking in", path) from exc

    def __iter__(self) -> Iterator[bytes]:
        """The chunks, then the file is closed."""
        try:
            while self._left is None or self._left > 0:
                chunk = self._read()
                if not chunk:
                    if self._left:
                        raise InvalidInputError(f"{self._what}: {self.path} ends early")
                    if self._verifier is not None:
                        self._verifier.verify()
                    return
                if self._verifier is not None:
                    self._verifier.update(chunk)
                if self._left is not None:
                    self._left -= len(chunk)
                yield chunk
        finally:
            self.close()

    def _read(self) -> bytes:
        if self._aborted.is_set() or self._file is None:
            raise CancelledError(f"{self._what}: read aborted")
        want = READ_CHUNK if self._left is None else min(READ_CHUNK, self._left)
        try:
            return self._file.read(want)
        except (OSError, ValueError) as exc:
            if self._aborted.is_set():
                raise CancelledError(f"{self._what}: read aborted") from None
            if isinstance(exc, OSError):
                raise os_error(exc, "reading", self.path) from exc
            raise

    def close(self) -> None:
        """Close the file. Idempotent."""
        f, self._file = self._file, None
        if f is not None:
            f.close()

    def abort(self) -> None:
        """Stop the stream from another thread: the next chunk raises CancelledError."""
        self._aborted.set()


def write_blob(writer: BlobWriter, open_at: BlobOpener) -> None:
    """Feed ``writer`` from ``open_at(writer.offset)`` and commit; a failed check drops the data.

    A blob the writer reports as existing is not read at all.
    """
    with writer:
        try:
            if not writer.exists:
                for chunk in open_at(writer.offset):
                    writer.write(chunk)
            writer.commit()
        except IntegrityError:
            writer.abort()  # never resume from bytes that failed a check
            raise


class DirectoryBlobs:
    """A ``blobs/ALG/HEX`` directory as the target of the store's ingest (an IngestTarget).

    Partial data lives in ``ROOT/<ingest_dir>/ALG/HEX.data`` under a per-blob flock, so two
    copies into one directory write a blob once and a killed copy resumes where it stopped.
    No DiffID is computed (nothing here registers layers).
    """

    def __init__(self, root: Path, ingest_dir: str) -> None:
        self.layout = StoreLayout(root, ingest_dir)

    def exists(self, digest: Digest) -> bool:
        """True when the blob file is there."""
        return self.layout.blob(digest).is_file()

    def info(self, digest: Digest) -> BlobInfo:
        """Digest and size of a committed blob file."""
        path = self.layout.blob(digest)
        try:
            return BlobInfo(digest, path.stat().st_size)
        except FileNotFoundError:
            raise NotFoundError(f"blob {digest}: {path} does not exist") from None

    def record(
        self,
        digest: Digest,
        size: int,
        media_type: str | None,
        diff_id: Digest | None,
        uncompressed_size: int | None,
    ) -> BlobInfo:
        """Nothing to remember beyond the file itself."""
        return BlobInfo(digest, size)

    def writer(self, desc: Descriptor, on_wait: WaitHook | None = None) -> IngestWriter:
        """The locked, resumable, verifying write of ``desc`` (directories made as needed)."""
        for parent in (
            self.layout.ingest_data(desc.digest).parent,
            self.layout.blob(desc.digest).parent,
        ):
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise os_error(exc, "creating", parent) from exc
        return IngestWriter(self, desc.digest, desc.size, on_wait=on_wait)
