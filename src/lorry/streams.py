"""Verifying streams: check a blob's digest and size, and compute a layer's DiffID, in one pass.

DESIGN.md principle 2: a layer blob is hashed, size-checked, decompressed and DiffID-hashed in a
single streaming pass as it arrives. :class:`LayerDigester` is that pass, free of I/O: the
caller feeds it the compressed chunks it also writes to the store, from a worker thread, and asks
for the result at the end. On resume the caller feeds it the partial bytes already on disk first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from lorry.compression import Compression, decompressor
from lorry.digest import DiffID, Digest, Hasher, Verifier
from lorry.errors import IntegrityError

__all__ = ["CountingIterator", "LayerDigest", "LayerDigester", "verify_bytes"]


@dataclass(frozen=True, slots=True)
class LayerDigest:
    """What one verified pass over a layer blob found."""

    blob_digest: Digest
    size: int
    diff_id: DiffID
    uncompressed_size: int


class LayerDigester:
    """Verify a compressed layer blob and compute its DiffID while the bytes stream past.

    ``update`` raises :class:`IntegrityError` as soon as the stream is longer than ``size`` or
    not valid for its compression; :meth:`finish` raises on a short stream or a digest mismatch,
    and on a DiffID mismatch when ``expected_diff_id`` is given. Not thread-safe: one thread
    feeds it at a time.
    """

    def __init__(
        self,
        expected: Digest,
        size: int | None,
        compression: Compression,
        *,
        expected_diff_id: Digest | None = None,
        what: str = "",
    ) -> None:
        self.what = what or f"blob {expected}"
        self._blob = Verifier(expected, size, self.what)
        self._decompress = decompressor(compression, self.what)
        self._diff = Hasher("sha256")
        self._expected_diff_id = expected_diff_id

    @property
    def offset(self) -> int:
        """How many compressed bytes have been fed so far."""
        return self._blob.size

    def update(self, chunk: bytes) -> None:
        """Feed the next compressed chunk."""
        self._blob.update(chunk)
        for out in self._decompress.feed(chunk):
            self._diff.update(out)

    def finish(self) -> LayerDigest:
        """Check the whole stream and return its digests; raise IntegrityError on any mismatch."""
        self._blob.verify()
        for out in self._decompress.finish():
            self._diff.update(out)
        diff_id = DiffID(self._diff.digest())
        if self._expected_diff_id is not None and diff_id != self._expected_diff_id:
            raise IntegrityError(
                f"{self.what}: DiffID mismatch: content is {diff_id}, "
                f"the image config says {self._expected_diff_id}"
            )
        return LayerDigest(self._blob.expected, self._blob.size, diff_id, self._diff.size)


def verify_bytes(data: bytes, expected: Digest, size: int | None = None, what: str = "") -> bytes:
    """Return ``data`` if it matches ``expected`` (and ``size``); raise IntegrityError otherwise."""
    v = Verifier(expected, size, what or f"content {expected}")
    v.update(data)
    v.verify()
    return data


class CountingIterator:
    """Wrap an iterable of chunks, calling ``on_bytes(total_so_far)`` after each chunk."""

    def __init__(self, chunks: Iterable[bytes], on_bytes: Callable[[int], None]) -> None:
        self._it = iter(chunks)
        self._on_bytes = on_bytes
        self.count = 0

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        chunk = next(self._it)
        self.count += len(chunk)
        self._on_bytes(self.count)
        return chunk
