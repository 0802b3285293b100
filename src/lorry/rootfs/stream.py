"""One pass per layer: compressed chunks → inflate → DiffID hash → the tar reader.

:class:`LayerReader` is the file object :meth:`lorry.rootfs.apply.Tree.apply` reads; after the
tar ends, :func:`apply_layer` drains the rest (DiffIDs cover the padding) and returns the DiffID
found. Comparing it with the config's claim is the store's (``LayerStore.record_check``), so the
rule and its message live in one place.
"""

from __future__ import annotations

from collections.abc import Iterator

from lorry.compression import Compression, decompressor
from lorry.digest import DiffID, Hasher
from lorry.rootfs.apply import Tree

__all__ = ["LayerReader", "apply_layer"]


class LayerReader:
    """A read-only stream of a layer's tar bytes, inflated and DiffID-hashed as they are read."""

    def __init__(self, chunks: Iterator[bytes], compression: Compression, what: str) -> None:
        self._chunks = chunks
        self._inflate = decompressor(compression, what)
        self._hasher = Hasher()
        self._buf = bytearray()
        self._parts: Iterator[bytes] = iter(())
        self._done = False

    def _more(self) -> bool:
        for part in self._parts:
            self._hasher.update(part)
            self._buf += part
            return True
        if self._done:
            return False
        chunk = next(self._chunks, None)
        if chunk is None:
            self._done = True
            self._parts = iter(list(self._inflate.finish()))
        else:
            self._parts = self._inflate.feed(chunk)
        return True

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all with -1); b"" only at the real end of the stream."""
        while (n < 0 or len(self._buf) < n) and self._more():
            pass
        size = len(self._buf) if n < 0 else min(n, len(self._buf))
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def diff_id(self) -> tuple[DiffID, int]:
        """Drain what the tar reader left and return the DiffID and tar size."""
        while self._more():
            self._buf.clear()
        return DiffID(self._hasher.digest()), self._hasher.size


def apply_layer(tree: Tree, reader: LayerReader, what: str) -> tuple[DiffID, int]:
    """Apply one layer to ``tree`` from ``reader``; return the DiffID and size of its tar."""
    tree.apply(reader, what)  # type: ignore[arg-type]
    return reader.diff_id()
