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
    """A read-only stream of a layer's tar bytes, inflated and DiffID-hashed as they are read.

    It holds one inflated chunk (≤ 1 MiB) and an offset into it: :meth:`read1` hands out views
    of that chunk without copying, :meth:`read` copies only what it returns.
    """

    def __init__(self, chunks: Iterator[bytes], compression: Compression, what: str) -> None:
        self._chunks = chunks
        self._inflate = decompressor(compression, what)
        self._hasher = Hasher()
        self._view = memoryview(b"")
        self._pos = 0
        self._parts: Iterator[bytes] = iter(())
        self._done = False

    def _more(self) -> bool:
        """Make the next non-empty inflated chunk current; False at the end of the stream."""
        while True:
            for part in self._parts:
                if part:
                    self._hasher.update(part)
                    self._view = memoryview(part)
                    self._pos = 0
                    return True
            if self._done:
                return False
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
                self._parts = iter(list(self._inflate.finish()))
            else:
                self._parts = self._inflate.feed(chunk)

    def read1(self, n: int) -> memoryview:
        """Up to ``n`` bytes (n > 0) as a view of the current chunk, no copy; empty only at the
        end. The view stays valid (chunks are immutable) but should be used before the next call.
        """
        pos = self._pos
        if pos >= len(self._view):
            if not self._more():
                return memoryview(b"")
            pos = 0
        end = pos + n
        self._pos = end
        return self._view[pos:end]

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all with -1); b"" only at the real end of the stream."""
        parts: list[memoryview] = []
        want = n
        while want != 0:
            piece = self.read1(want if want > 0 else 1 << 30)
            if not piece:
                break
            parts.append(piece)
            want -= len(piece) if want > 0 else 0
        if len(parts) == 1:
            return parts[0].tobytes()
        return b"".join(parts)

    def diff_id(self) -> tuple[DiffID, int]:
        """Drain what the tar reader left and return the DiffID and tar size."""
        while self._more():
            pass
        self._view = memoryview(b"")
        self._pos = 0
        return DiffID(self._hasher.digest()), self._hasher.size


def apply_layer(tree: Tree, reader: LayerReader, what: str) -> tuple[DiffID, int]:
    """Apply one layer to ``tree`` from ``reader``; return the DiffID and size of its tar."""
    tree.apply(reader, what)  # type: ignore[arg-type]
    return reader.diff_id()
