"""Helpers for one operation's own limits and for waiting on many transfers at once.

The managers hold the process-wide limits. One operation (a single pull or push) may ask for a
tighter one: :class:`OpGate` makes that call start at most ``n`` of its network transfers at a
time, on top of the process limit, and :func:`limited` applies an optional per-operation CPU
limiter together with the process one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypeVar, cast

import anyio
import anyio.abc

from lorry.progress import ProgressEvent, ProgressSink
from lorry.transfer.limits import check_limit
from lorry.transfer.manager import Transfer, Watcher

__all__ = ["OpGate", "gather_results", "limited"]

T = TypeVar("T")


class OpGate:
    """Caps how many transfers one operation starts at once (``0`` = no cap of its own)."""

    def __init__(self, limit: int) -> None:
        check_limit("per-operation concurrency", limit)
        self._limiter = anyio.CapacityLimiter(limit) if limit else None
        self._token: object | None = None

    async def acquire(self, sink: ProgressSink, waiting: ProgressEvent) -> None:
        """Take a place, first telling ``sink`` the line is ``waiting`` if none is free."""
        if self._limiter is None:
            return
        if self._limiter.available_tokens < 1:
            sink.emit(waiting)
        token = object()
        await self._limiter.acquire_on_behalf_of(token)
        self._token = token

    def release_when_done(self, tg: anyio.abc.TaskGroup, transfer: Transfer[Any]) -> None:
        """Give the place taken by the last :meth:`acquire` back once ``transfer`` ends."""
        limiter, token, self._token = self._limiter, self._token, None
        if limiter is None or token is None:
            return

        async def wait_then_release() -> None:
            try:
                await transfer.wait_done()
            finally:
                limiter.release_on_behalf_of(token)

        tg.start_soon(wait_then_release)


@asynccontextmanager
async def limited(*limiters: anyio.CapacityLimiter | None) -> AsyncIterator[None]:
    """Hold one token of every given limiter (``None`` entries are skipped), in order."""
    async with AsyncExitStack() as stack:
        for limiter in limiters:
            if limiter is not None:
                await stack.enter_async_context(limiter)
        yield


async def gather_results(watchers: Sequence[Watcher[T]]) -> list[T]:
    """Wait for every watcher's result, in parallel; raise the first error as soon as it comes."""
    results: list[T | None] = [None] * len(watchers)
    errors: list[Exception] = []
    async with anyio.create_task_group() as tg:

        async def one(i: int, w: Watcher[T]) -> None:
            try:
                results[i] = await w.result()
            except Exception as exc:
                errors.append(exc)
                tg.cancel_scope.cancel()

        for i, w in enumerate(watchers):
            tg.start_soon(one, i, w)
    if errors:
        raise errors[0]
    return cast(list[T], results)
