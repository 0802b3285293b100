"""One write in progress: :class:`IngestWriter`, the resumable, verifying writer of a blob.

An ingest is keyed by the digest it expects. Its bytes go to ``ingest/<alg>/<hex>.data``; an
flock on ``<hex>.lock`` says who is writing it. Opening a writer takes the lock (waiting while
another thread or process holds it), then:

* if the blob is already committed, :attr:`IngestWriter.exists` is True and there is nothing
  to write: :meth:`~IngestWriter.commit` returns the blob's info. This is how a second process
  that wanted the same blob uses the first one's result instead of fetching it again;
* otherwise the partial data left by an earlier, interrupted writer is re-hashed (and, for a
  layer, re-inflated for the DiffID) and :attr:`IngestWriter.offset` says where to resume.
  Re-hashing was measured simpler than saving hash state and fast enough (docs/store.md).

:meth:`~IngestWriter.write` appends a chunk with unbuffered ``os.write`` (so whatever it
accepted survives a kill of the process), hashes it and feeds the DiffID tap: verification and
DiffID happen while streaming, never in a second pass. :meth:`~IngestWriter.commit` checks size
and digest, fsyncs, renames into ``blobs/`` and fsyncs the directory; only then is the blob
visible. A failed check deletes the partial data, so the next attempt starts from zero.

Thread safety: a writer is used by one thread at a time (any thread: the pull hands chunks from
a worker thread). Always close it (it is a context manager); closing keeps the partial data.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from lorry.digest import Digest, Verifier
from lorry.errors import IntegrityError, InvalidInputError, StoreError
from lorry.store.fsutil import fsync_dir, os_error, size_or_zero
from lorry.store.locks import FileLock, WaitHook
from lorry.store.protocols import BlobInfo, IngestTarget
from lorry.store.root import StoreLayout
from lorry.streams import DiffIDTap, compression_for

__all__ = ["READ_CHUNK", "IngestWriter", "remove_leftovers"]

#: Read size when re-hashing partial data or reading blobs (1 MiB reads are twice as cheap).
READ_CHUNK = 1 << 20


class IngestWriter:
    """A locked, resumable write of the blob ``digest`` (see the module docstring)."""

    def __init__(
        self,
        store: IngestTarget,
        digest: Digest,
        size: int | None = None,
        *,
        media_type: str | None = None,
        on_wait: WaitHook | None = None,
        diff_ids: bool = True,
    ) -> None:
        self.digest = digest
        self.size = size
        self.media_type = media_type
        self._store = store
        self._data = store.layout.ingest_data(digest)
        self._lock = FileLock(store.layout.ingest_lock(digest))
        self._fd: int | None = None
        self._verifier = Verifier(digest, size, what=f"blob {digest}")
        compression = compression_for(media_type) if diff_ids else None
        self._tap = DiffIDTap(compression, f"layer blob {digest}") if compression else None
        self._tap_error: IntegrityError | None = None
        self._done: BlobInfo | None = None
        #: Bytes found on disk from an earlier writer when this one opened.
        self.resumed = 0
        self._lock.acquire(on_wait=on_wait)
        try:
            #: True when the blob was already committed: nothing to write.
            self.exists = store.exists(digest)
            if not self.exists:
                self._open_partial()
        except BaseException:
            self.close()
            raise

    @property
    def offset(self) -> int:
        """Bytes accepted so far: the next chunk written continues from here."""
        return self._verifier.size

    @property
    def path(self) -> Path:
        """The partial data file (for messages)."""
        return self._data

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append ``chunk``; IntegrityError past the expected size, DiskFullError on ENOSPC."""
        fd = self._need_fd()
        if self.size is not None and self.offset + len(chunk) > self.size:
            raise IntegrityError(
                f"blob {self.digest}: size mismatch: more than the expected {self.size} bytes"
            )
        view = memoryview(chunk)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            self._truncate_to_offset()  # drop the torn chunk: file and hash state agree again
            raise os_error(exc, "writing", self._data) from exc
        self._feed(chunk)

    def restart(self) -> None:
        """Forget the partial data and start from offset 0 (the source ignored a Range)."""
        fd = self._need_fd()
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError as exc:
            raise os_error(exc, "truncating", self._data) from exc
        self._reset_hashes()

    def commit(self) -> BlobInfo:
        """Verify size and digest, then make the blob visible; an existing blob is success."""
        if self._done is not None:
            return self._done
        if self.exists:
            self._done = self._store.info(self.digest)
            self.close()
            return self._done
        fd = self._need_fd()
        try:
            self._verifier.verify()
            diff = self._finish_tap()
        except IntegrityError:
            self.abort()
            raise
        target = self._store.layout.blob(self.digest)
        try:
            os.fsync(fd)
            os.replace(self._data, target)
            fsync_dir(target.parent)
        except OSError as exc:
            raise os_error(exc, "committing blob to", target) from exc
        self._done = self._store.record(
            self.digest, self.offset, self.media_type, *(diff or (None, None))
        )
        self.close(unlink_lock=True)
        return self._done

    def abort(self) -> None:
        """Delete the partial data and release the lock."""
        if self._fd is not None and not self.exists:
            self._data.unlink(missing_ok=True)
        self.close(unlink_lock=True)

    def close(self, *, unlink_lock: bool = False) -> None:
        """Release the lock and keep any partial data for a later resume. Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        # Nothing left to resume: remove the lock file too (safe, we still hold the lock).
        done = getattr(self, "exists", False) or self._done is not None
        self._lock.release(unlink=unlink_lock or done)

    def __enter__(self) -> IngestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _need_fd(self) -> int:
        if self._fd is None:
            state = "already exists" if self.exists else "is closed"
            raise StoreError(f"ingest of blob {self.digest} {state}: nothing to write")
        return self._fd

    def _open_partial(self) -> None:
        try:
            self._fd = os.open(self._data, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            have = os.fstat(self._fd).st_size
            if self.size is not None and have > self.size:
                os.ftruncate(self._fd, 0)  # longer than the blob: it cannot be a prefix
                have = 0
            self._replay(have)
            os.lseek(self._fd, self.offset, os.SEEK_SET)
        except OSError as exc:
            raise os_error(exc, "resuming ingest", self._data) from exc
        self.resumed = self.offset

    def _replay(self, have: int) -> None:
        assert self._fd is not None
        os.lseek(self._fd, 0, os.SEEK_SET)
        while self.offset < have:
            chunk = os.read(self._fd, min(READ_CHUNK, have - self.offset))
            if not chunk:
                break
            self._feed(chunk)
        if self._tap_error is not None:  # the partial data is not a valid layer prefix
            os.ftruncate(self._fd, 0)
            self._reset_hashes()
        elif self.offset != have:
            os.ftruncate(self._fd, self.offset)

    def _feed(self, chunk: bytes | bytearray | memoryview) -> None:
        self._verifier.update(chunk)
        if self._tap is not None and self._tap_error is None:
            try:
                self._tap.update(chunk)
            except IntegrityError as exc:  # reported at commit, after the digest check
                self._tap_error = exc

    def _finish_tap(self) -> tuple[Digest, int] | None:
        if self._tap is None:
            return None
        if self._tap_error is not None:
            raise self._tap_error
        return self._tap.finish()

    def _reset_hashes(self) -> None:
        self._verifier = Verifier(self.digest, self.size, what=f"blob {self.digest}")
        if self._tap is not None:
            self._tap = DiffIDTap(self._tap.compression, self._tap.what)
        self._tap_error = None

    def _truncate_to_offset(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # if it stays longer, a resume fails the digest
                os.ftruncate(self._fd, self.offset)
                os.lseek(self._fd, self.offset, os.SEEK_SET)


def remove_leftovers(
    layout: StoreLayout, *, committed_only: bool = False
) -> tuple[list[Digest], int]:
    """Delete the partial data and lock files of ingests nobody is writing; return their
    digests and the bytes freed.

    ``committed_only`` keeps the partial data of blobs not yet committed (a later copy resumes
    from it) and removes only what a blob already in ``blobs/`` left behind: a kill between
    the commit's rename and the lock file's unlink leaves that lock, and a later copy finds
    the blob present and never opens a writer that would remove it.
    """
    gone: list[Digest] = []
    freed = 0
    if not layout.ingest.is_dir():
        return gone, freed
    for alg_dir in sorted(layout.ingest.iterdir()):
        if not alg_dir.is_dir():
            continue
        names = {n.rsplit(".", 1)[0] for n in os.listdir(alg_dir) if not n.startswith(".")}
        for hexpart in sorted(names):
            try:
                digest = Digest(alg_dir.name, hexpart)
            except InvalidInputError:
                continue
            if committed_only and not layout.blob(digest).is_file():
                continue
            lock = FileLock(layout.ingest_lock(digest))
            if not lock.acquire(blocking=False):
                continue  # a live writer: keep it
            data = layout.ingest_data(digest)
            try:
                size = size_or_zero(data)
                data.unlink(missing_ok=True)
            except OSError as exc:
                raise os_error(exc, "deleting", data) from exc
            finally:
                lock.release(unlink=True)
            gone.append(digest)
            freed += size
    return gone, freed
