"""Compute a layer's DiffID while its compressed blob streams past, in the same pass.

The store keeps the *compressed* blob (push re-uploads those exact bytes), yet a layer is known
by its DiffID, the digest of the uncompressed tar. :class:`DiffIDTap` is fed every compressed
chunk the ingest writes, inflates it incrementally (gzip via isal, zstd via zstandard, or no
compression) and hashes the output, so no second pass over the file is ever needed.
"""

from __future__ import annotations

from typing import Protocol, cast

import zstandard
from isal import isal_zlib

from lorry.digest import DiffID, Hasher
from lorry.errors import IntegrityError, UnsupportedError
from lorry.mediatypes import compression_of, is_layer

__all__ = ["DiffIDTap", "compression_for"]

# isal's stub declares IsalError as an instance; it is a class (a direct Exception subclass).
_INFLATE_ERRORS: tuple[type[Exception], ...] = (
    cast("type[Exception]", isal_zlib.IsalError),
    zstandard.ZstdError,
)
_MAX_OUT = 4 << 20  # inflate at most this much per step, to bound memory on compression bombs


class _Inflater(Protocol):
    def feed(self, data: bytes) -> list[bytes]: ...
    def done(self) -> bool: ...


class _Plain:
    def feed(self, data: bytes) -> list[bytes]:
        return [data]

    def done(self) -> bool:
        return True


class _Gzip:
    """Incremental gzip inflation that follows concatenated members (pigz output has many)."""

    def __init__(self) -> None:
        self._d = isal_zlib.decompressobj(wbits=31)
        self._ended = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        while data:
            if self._d.eof:
                data, self._d = self._d.unused_data + data, isal_zlib.decompressobj(wbits=31)
            chunk = self._d.decompress(data, _MAX_OUT)
            out.append(chunk)
            data = self._d.unconsumed_tail
            if self._d.eof:
                data = self._d.unused_data + data
                if data:
                    self._d = isal_zlib.decompressobj(wbits=31)
        return out

    def done(self) -> bool:
        return bool(self._d.eof)


class _Zstd:
    def __init__(self) -> None:
        self._d = zstandard.ZstdDecompressor().decompressobj(read_across_frames=True)

    def feed(self, data: bytes) -> list[bytes]:
        return [self._d.decompress(data)]

    def done(self) -> bool:
        return True


def compression_for(media_type: str | None) -> str | None:
    """``gzip``, ``zstd`` or ``none`` for a layer media type; None when it is not a layer."""
    if media_type is None or not is_layer(media_type):
        return None
    return compression_of(media_type)


class DiffIDTap:
    """Inflate and hash a compressed layer as its chunks arrive; yields DiffID and tar size."""

    def __init__(self, compression: str) -> None:
        inflaters: dict[str, type[_Inflater]] = {"gzip": _Gzip, "zstd": _Zstd, "none": _Plain}
        kind = inflaters.get(compression)
        if kind is None:
            raise UnsupportedError(f"layer compression {compression!r} is not supported")
        self.compression = compression
        self._inflater = kind()
        self._hasher = Hasher()

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next compressed chunk."""
        try:
            parts = self._inflater.feed(bytes(chunk))
        except _INFLATE_ERRORS as exc:
            raise IntegrityError(f"layer is not valid {self.compression} data: {exc}") from exc
        for part in parts:
            self._hasher.update(part)

    def finish(self) -> tuple[DiffID, int]:
        """The DiffID and uncompressed size, after the last chunk; raise if the data was cut."""
        if not self._inflater.done():
            raise IntegrityError(f"layer {self.compression} stream ends before its end marker")
        return DiffID(self._hasher.digest()), self._hasher.size
