"""Run a coroutine to completion from synchronous code, even inside a running event loop.

The ``*_sync`` facades use this one rule: with no event loop in the calling thread the work
runs in a new loop there (``anyio.run``); called from inside a running loop (a notebook, an
async framework's sync callback) it runs in a new loop on a worker thread and the caller's
thread waits for it, since a loop cannot be re-entered. Exceptions come back unchanged.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

__all__ = ["run_blocking"]

T = TypeVar("T")


def run_blocking(make: Callable[[], Awaitable[T]]) -> T:
    """``await make()`` in a fresh event loop; on a worker thread when this one runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(make, backend="asyncio")
    done: list[T] = []
    failed: list[BaseException] = []

    def work() -> None:
        try:
            done.append(anyio.run(make, backend="asyncio"))
        except BaseException as exc:  # handed back to the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=work, name="lorry-sync")
    worker.start()
    worker.join()
    if failed:
        raise failed[0]
    return done[0]
