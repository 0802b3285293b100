""":class:`FileBlobStream`: a blob read from a local file (a layout blob, a tar member, a store
blob) as a :class:`~lorry.transports.BlobStream` — the one file reader of every transport."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lorry.errors import CancelledError, InvalidInputError, NotFoundError
from lorry.store.fsutil import os_error

__all__ = ["READ_CHUNK", "FileBlobStream"]

#: Bytes per chunk (1 MiB reads measured twice as cheap as 64 KiB ones).
READ_CHUNK = 1 << 20


class FileBlobStream:
    """``length`` bytes (None: to the end) of ``path`` from ``offset``, in 1 MiB chunks.

    The file is opened at once, so a missing blob is a NotFoundError naming it before any
    transfer starts. A file shorter than ``length`` is an InvalidInputError (a truncated
    archive); :meth:`abort` makes the next chunk raise CancelledError.
    """

    def __init__(
        self, path: Path, offset: int = 0, length: int | None = None, what: str = ""
    ) -> None:
        self.path = path
        self._what = what or f"blob file {path}"
        self._left = length
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
                    return
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
