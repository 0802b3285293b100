"""One pass per layer: compressed chunks → inflate → DiffID hash → the tar reader.

:class:`LayerReader` is the file object :meth:`lorry.rootfs.apply.Tree.apply` reads; after the
tar ends, :func:`apply_layer` drains the rest (DiffIDs cover the padding) and returns the DiffID
found. Comparing it with the config's claim is the store's (``LayerStore.record_check``), so the
rule and its message live in one place. With ``ahead`` the chunks are read, inflated and hashed
in a thread of their own, that many inflated chunks ahead of the tar reader: the work is C code
that releases the GIL (ISA-L, zstd, sha256), so it runs on the second core while the applier
parses headers and writes files (docs/decisions.md, "tar reader").
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

from lorry.compression import Compression
from lorry.digest import DiffID
from lorry.rootfs.apply import Tree
from lorry.streams import DiffIDTap

__all__ = ["LayerReader", "apply_layer"]


class LayerReader:
    """A read-only stream of a layer's tar bytes, inflated and DiffID-hashed as they are read.

    It holds one inflated chunk (≤ 1 MiB) and an offset into it: :meth:`read1` hands out views
    of that chunk without copying, :meth:`read` copies only what it returns.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        compression: Compression,
        what: str,
        *,
        ahead: int = 0,
        on_chunk: Callable[[], None] | None = None,
    ) -> None:
        self._chunks = chunks
        #: Called in the reading thread whenever a new inflated chunk becomes current, and at
        #: the end of the stream.
        self._on_chunk = on_chunk
        self._tap = DiffIDTap(compression, what)
        self._view = memoryview(b"")
        self._pos = 0
        self._ended = False
        self._source: Iterator[bytes] = self._inflated()
        self._ahead = _Ahead(self._source, ahead, what) if ahead > 0 else None

    def _inflated(self) -> Iterator[bytes]:
        """The non-empty inflated chunks, DiffID-hashed by the tap (in the thread, with
        ``ahead``)."""
        try:
            for chunk in self._chunks:
                yield from (part for part in self._tap.feed(chunk) if part)
            yield from (part for part in self._tap.rest() if part)
        finally:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()  # a stopped read lets go of its source (a blob file) at once

    def _more(self) -> bool:
        """Make the next non-empty inflated chunk current; False at the end of the stream."""
        if self._ended:
            return False
        part = self._ahead.next() if self._ahead is not None else next(self._source, None)
        if part is None:
            self._ended = True
        else:
            self._view = memoryview(part)
            self._pos = 0
        if self._on_chunk is not None:
            self._on_chunk()  # at the end too: the final count
        return part is not None

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
        return self._tap.result()

    def close(self) -> None:
        """Stop the read-ahead thread (if any) and wait for it; safe to call twice."""
        if self._ahead is not None:
            self._ahead.close()


_END = object()


class _Ahead:
    """Runs an iterator in a thread, at most ``depth`` items ahead; its error is re-raised here
    in order, after the items it produced. :meth:`close` stops and joins the thread."""

    def __init__(self, items: Iterator[bytes], depth: int, what: str) -> None:
        self._items = items
        self._queue: queue.Queue[object] = queue.Queue(depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, name=f"inflate {what}", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    break
            else:
                self._put(_END)
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(exc)
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:
                close()  # a stopped read closes its blob file now, in this thread

    def next(self) -> bytes | None:
        """The next item, None at the end; the producer's error is raised here."""
        if self._finished:
            return None
        item = self._queue.get()
        if item is _END:
            self._finished = True
            self._thread.join()
            return None
        if isinstance(item, BaseException):
            self._finished = True
            self._thread.join()
            raise item
        assert isinstance(item, bytes | bytearray | memoryview)
        return bytes(item) if not isinstance(item, bytes) else item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                continue
        self._thread.join()


def apply_layer(tree: Tree, reader: LayerReader, what: str) -> tuple[DiffID, int]:
    """Apply one layer to ``tree`` from ``reader``; return the DiffID and size of its tar.

    The reader is closed afterwards (its read-ahead thread, if any, stopped), whatever happens.
    """
    try:
        tree.apply(reader, what)  # type: ignore[arg-type]
        return reader.diff_id()
    finally:
        reader.close()
