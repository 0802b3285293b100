"""Verifying streams: compute a layer's DiffID while its compressed blob streams past.

DESIGN.md principle 2: a layer blob is hashed, size-checked, decompressed and DiffID-hashed in a
single streaming pass as it arrives. The store's ingest writer checks size and blob digest with
:class:`lorry.digest.Verifier` and feeds every compressed chunk it writes to a
:class:`DiffIDTap`, which inflates it with :mod:`lorry.compression` and hashes the output, so no
second pass over the file is ever needed.
"""

from __future__ import annotations

from collections.abc import Iterator

from lorry.compression import Compression, decompressor
from lorry.digest import DiffID, Hasher
from lorry.mediatypes import compression_of, is_layer

__all__ = ["DiffIDTap", "compression_for"]


def compression_for(media_type: str | None) -> Compression | None:
    """``gzip``, ``zstd`` or ``none`` for a layer media type; None when it is not a layer."""
    if media_type is None or not is_layer(media_type):
        return None
    kind = compression_of(media_type)
    if kind == "gzip":
        return "gzip"
    return "zstd" if kind == "zstd" else "none"


class DiffIDTap:
    """Inflate and hash a compressed layer as its chunks arrive; yields DiffID and tar size.

    ``update`` and ``finish`` raise :class:`~lorry.errors.IntegrityError` when the data is not
    valid for its compression. One thread at a time.
    """

    def __init__(self, compression: Compression, what: str = "layer") -> None:
        self.compression: Compression = compression
        self.what = what
        self._inflate = decompressor(compression, what)
        self._hasher = Hasher()

    def feed(self, chunk: bytes | bytearray | memoryview) -> Iterator[bytes]:
        """Feed the next compressed chunk; yield the inflated parts, each hashed already."""
        for part in self._inflate.feed(chunk if isinstance(chunk, bytes) else bytes(chunk)):
            self._hasher.update(part)
            yield part

    def rest(self) -> Iterator[bytes]:
        """After the last chunk: the inflated parts still held back, hashed; raise if cut."""
        for part in self._inflate.finish():
            self._hasher.update(part)
            yield part

    def update(self, chunk: bytes | bytearray | memoryview) -> None:
        """Feed the next compressed chunk (its output only hashed)."""
        for _ in self.feed(chunk):
            pass

    def result(self) -> tuple[DiffID, int]:
        """The DiffID and uncompressed size of what was inflated so far."""
        return DiffID(self._hasher.digest()), self._hasher.size

    def finish(self) -> tuple[DiffID, int]:
        """The DiffID and uncompressed size, after the last chunk; raise if the data was cut."""
        for _ in self.rest():
            pass
        return self.result()
