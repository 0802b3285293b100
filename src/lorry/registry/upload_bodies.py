"""Upload bodies: the monolithic PUT body and the chunk source of a chunked upload.

Both read exactly the bytes they promise (``IntegrityError`` when the stream is short) and are
replayable only as far as their stream allows: a stream that can seek is sought back; one that
cannot is read once (a chunk is then held in memory so it can be sent again).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, cast

from lorry.errors import IntegrityError, UnavailableError
from lorry.registry.blobs import CHUNK_SIZE
from lorry.registry.transport import BodySource

__all__ = ["ChunkSource", "Readable", "SizedBody", "exactly", "monolithic_body"]


class Readable(Protocol):
    """A binary stream: anything with ``read(n)`` (files, BlobReader, BytesIO)."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes; b"" at the end."""
        ...


class _Seekable(Readable, Protocol):
    """A stream that can go back: what lets a chunk stream instead of waiting in memory."""

    def tell(self) -> int:
        """The position."""
        ...

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move to ``offset``."""
        ...


class SizedBody:
    """A body of known length, replayable when its stream can seek back to the start."""

    def __init__(self, stream: Readable, size: int, what: str) -> None:
        self.stream = stream
        self.size = size
        self.what = what
        self._start: int | None = None
        seekable = getattr(stream, "seekable", None)
        if callable(seekable) and seekable():
            self._start = int(stream.tell())  # type: ignore[attr-defined]
        self._used = False

    def __call__(self) -> Iterable[bytes]:
        """A fresh iterator over the body (rewinding the stream when it was used before)."""
        if self._used:
            if self._start is None:
                raise UnavailableError(f"{self.what}: cannot resend a stream that cannot seek")
            self.stream.seek(self._start)  # type: ignore[attr-defined]
        self._used = True
        return exactly(self.stream, self.size, self.what)


def monolithic_body(stream: Readable, size: int, what: str) -> SizedBody:
    """The PUT body: replayable (a factory) when the stream seeks."""
    return SizedBody(stream, size, what)


def exactly(stream: Readable, size: int, what: str) -> Iterator[bytes]:
    """``size`` bytes from ``stream`` in 1 MiB pieces; IntegrityError when it is short."""
    left = size
    while left > 0:
        data = stream.read(min(CHUNK_SIZE, left))
        if not data:
            raise IntegrityError(f"{what}: source ended after {size - left} of {size} bytes")
        left -= len(data)
        yield data


class ChunkSource:
    """The bytes of each chunk: streamed from a seekable stream, else read into memory first.

    A seekable stream is sought back when a chunk is sent again (replay after a lost connection
    or an expired token, or from where a status check says the registry stands); one that cannot
    seek keeps the current chunk's bytes, so only they can be sent again.
    """

    def __init__(self, stream: Readable, offset: int, what: str) -> None:
        self.stream = stream
        self.what = what
        seekable = getattr(stream, "seekable", None)
        self.seekable = bool(callable(seekable) and seekable())
        self._held = b""
        self._held_at = offset  # the blob offset of ``_held[0]``

    def can_resend(self, offset: int) -> bool:
        """Whether the bytes from ``offset`` on can still be produced."""
        return offset >= 0 if self.seekable else offset >= self._held_at

    def body(self, start: int, length: int) -> BodySource:
        """The PATCH body for bytes ``start`` … ``start + length - 1``."""
        if self.seekable:
            stream = cast(_Seekable, self.stream)

            def produce() -> Iterable[bytes]:
                if stream.tell() != start:
                    stream.seek(start)
                return exactly(stream, length, self.what)

            return produce
        if start < self._held_at:
            raise UnavailableError(f"{self.what}: cannot resend byte {start} of a stream")
        self._held = self._held[start - self._held_at :]
        self._held_at = start
        if len(self._held) < length:
            more = length - len(self._held)
            self._held += b"".join(exactly(self.stream, more, self.what))
        return self._held[:length]
