"""The one blob byte path of every image move: a source blob as chunks, from any offset.

:class:`BlobFetch` opens a source stream (an :class:`~lorry.transports.BlobStream`, e.g. a
registry response or a layout file) at the offset the destination asks for and hands out its
chunks. A stream cut after some progress is reopened at once from the exact offset (at most
:data:`MAX_RECONNECTS` times per attempt); other failures go back to the transfer's retry
policy. Every chunk passes a cancellation check, and :meth:`BlobFetch.abort` (from the event
loop) cuts the stream a worker thread is blocked on. Verification is the destination's: its
writer hashes every byte it accepts (transports/protocols.py, "Who verifies").
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Generator
from functools import partial

import anyio.from_thread

from lorry.errors import UnavailableError
from lorry.progress import ProgressEvent
from lorry.transfer.protocols import TransferProgress
from lorry.transports import BlobStream

__all__ = ["MAX_RECONNECTS", "BlobFetch", "Emit", "StreamOpener", "thread_emitter", "thread_poster"]

#: Posts a progress event from the worker thread to the event loop.
Emit = Callable[[ProgressEvent], None]

#: Immediate reconnects within one attempt, each only after bytes arrived since the last one.
MAX_RECONNECTS = 3

#: ``open(offset)`` → the source blob's stream from ``offset``.
StreamOpener = Callable[[int], BlobStream]


class BlobFetch:
    """Chunks of one source blob, reconnecting at the exact offset; abortable from any thread.

    ``check`` runs before each chunk is handed out (anyio's ``check_cancelled`` in a worker
    thread). ``reconnects`` counts the reopenings of the last :meth:`chunks` call; ``size`` is
    the blob size once a stream reported it (``BlobStream.size`` when it has one).
    """

    def __init__(
        self,
        open_stream: StreamOpener,
        *,
        size: int | None = None,
        check: Callable[[], None] | None = None,
    ) -> None:
        self._open = open_stream
        self._check = check or (lambda: None)
        self._lock = threading.Lock()
        self._stream: BlobStream | None = None
        self._aborted = False
        self.size = size
        self.reconnects = 0

    def chunks(self, offset: int = 0) -> Generator[bytes, None, None]:
        """The blob's bytes from ``offset`` as chunks; raises what the source raises."""
        self.reconnects = 0
        position = offset
        while True:
            start = position
            stream = self._attach(self._open(position))
            try:
                if self.size is None:
                    self.size = getattr(stream, "size", None)
                for chunk in stream:
                    self._check()
                    position += len(chunk)
                    yield chunk
                return
            except UnavailableError:
                if self._aborted or position == start or self.reconnects >= MAX_RECONNECTS:
                    raise
                self.reconnects += 1
            finally:
                stream.close()

    def abort(self) -> None:
        """Cut the current stream; streams opened later are cut as they open."""
        with self._lock:
            self._aborted = True
            if self._stream is not None:
                self._stream.abort()

    def _attach(self, stream: BlobStream) -> BlobStream:
        with self._lock:
            self._stream = stream
            if self._aborted:
                stream.abort()
        return stream


def thread_poster() -> Callable[[Callable[[], object]], None]:
    """A thread-side ``post(call)`` that queues ``call()`` on the event loop without waiting.

    A blocking hop (``anyio.from_thread.run_sync``) makes the byte path wait for the event
    loop to win the GIL; queueing keeps the order (calls run in the order posted, before the
    worker's own result is delivered) and never blocks. Call it on the event loop; use the
    result in the worker thread.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: hop the portable, blocking way
        loop = None

    def post(call: Callable[[], object]) -> None:
        if loop is None:
            anyio.from_thread.run_sync(call)
        else:
            loop.call_soon_threadsafe(call)

    return post


def thread_emitter(progress: TransferProgress) -> Emit:
    """A thread-side ``emit`` that queues the event on the event loop (:func:`thread_poster`).

    A blocking hop per event cost the byte path a wait for the GIL every 512 KiB. Call it on
    the event loop; use the result in the worker thread.
    """
    post = thread_poster()

    def emit(event: ProgressEvent) -> None:
        post(partial(progress.emit, event))

    return emit
