"""The next layer opened while this one is applied, so its read-ahead starts early.

Each :class:`~lorry.rootfs.stream.LayerReader` reads, verifies and inflates in a thread of its
own; opened only when the applier reaches it, every layer began with the applier waiting for
its first inflated chunk (about 10 % of an unpack of 40 small layers, measured). Here a thread
walks the chain — waiting, for an unpack that fetches, until each layer has arrived — and opens
each layer one ahead of the applier: at most the layer being applied and the next are open.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["OpenedAhead"]

T = TypeVar("T")
R = TypeVar("R")


class _End:
    """The walk reached the end of the items."""


class OpenedAhead(Generic[T, R]):
    """``(item, open_one(item))`` for each item of ``items``, opened one item ahead.

    Iterate it in the applying thread; an error of the walk or of ``open_one`` is raised
    there, in order, after the items before it. :meth:`close` (always call it) stops the walk
    and closes with ``close_one`` what was opened and not handed out. It does not wait for the
    walking thread, which may be waiting for an item that comes only after the applier has
    given up (the copy an unpack waits on is cancelled after the applier returns); that thread
    closes whatever it opens after :meth:`close` itself.
    """

    def __init__(
        self,
        items: Iterable[T],
        open_one: Callable[[T], R],
        close_one: Callable[[R], None],
        *,
        name: str = "open ahead",
    ) -> None:
        self._open_one = open_one
        self._close_one = close_one
        self._ready: queue.Queue[tuple[T, R] | BaseException | _End] = queue.Queue()
        self._slot = threading.Semaphore(1)  # opened and not yet handed out: at most one
        self._lock = threading.Lock()  # a closed walk never hands out another opened item
        self._closed = threading.Event()
        thread = threading.Thread(target=self._walk, args=(iter(items),), name=name, daemon=True)
        thread.start()

    def _walk(self, items: Iterator[T]) -> None:
        try:
            for item in items:
                self._slot.acquire()
                if self._closed.is_set():
                    return
                opened = self._open_one(item)
                with self._lock:
                    if not self._closed.is_set():
                        self._ready.put((item, opened))
                        continue
                self._close_one(opened)
                return
            self._ready.put(_End())
        except BaseException as exc:  # raised in the applying thread, in order
            self._ready.put(exc)

    def __iter__(self) -> Iterator[tuple[T, R]]:
        while True:
            got = self._ready.get()
            if isinstance(got, _End):
                return
            if isinstance(got, BaseException):
                raise got
            self._slot.release()  # the next may be opened while this one is applied
            yield got

    def close(self) -> None:
        """Stop the walk; close what it opened and did not hand out (safe to call twice)."""
        with self._lock:
            self._closed.set()
            left: list[R] = []
            while True:
                try:
                    got = self._ready.get_nowait()
                except queue.Empty:
                    break
                if isinstance(got, tuple):
                    left.append(got[1])
        self._slot.release()  # a walk waiting for its slot wakes and sees the close
        for opened in left:
            self._close_one(opened)
