"""Stall detection: an attempt that moves no bytes for too long fails instead of hanging.

A TCP body that stops arriving never times out on its own, and every layer queued behind it sits
at ``Waiting`` for ever (xfer-spec §7.15). :class:`StallGuard` watches the progress events an
attempt emits; when none arrives for ``timeout`` seconds it cancels the attempt and raises
:class:`lorry.errors.StallError`, which is retryable, so the retry policy starts a fresh attempt.
Work that legitimately moves no bytes for a long time (a registry finalising a large upload,
xfer-spec §7.14) runs inside :meth:`StallGuard.exempt`.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar, cast

import anyio
import anyio.from_thread

from lorry.errors import InvalidInputError, StallError
from lorry.progress import ProgressEvent, ProgressSink
from lorry.transfer.clock import Clock, SystemClock

__all__ = ["DEFAULT_STALL_TIMEOUT", "StallGuard"]

T = TypeVar("T")

#: Seconds without progress after which an attempt counts as stalled.
DEFAULT_STALL_TIMEOUT = 30.0


class StallGuard:
    """Runs attempts under a no-progress watchdog; also the sink the attempt reports through.

    Every event passed to :meth:`emit` counts as activity and is forwarded to ``sink``.
    ``timeout=None`` disables the watchdog.
    """

    def __init__(
        self,
        sink: ProgressSink,
        *,
        timeout: float | None = DEFAULT_STALL_TIMEOUT,
        clock: Clock | None = None,
        what: str = "transfer",
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise InvalidInputError(f"invalid stall timeout {timeout}: must be positive")
        self._sink = sink
        self.timeout = timeout
        self._clock = clock or SystemClock()
        self._what = what
        self._last = self._clock.now()
        self._exempt = 0
        self._thread = threading.get_ident()

    def emit(self, event: ProgressEvent) -> None:
        """Record activity and forward the event; callable from an anyio worker thread too."""
        if threading.get_ident() != self._thread:
            anyio.from_thread.run_sync(self.emit, event)
            return
        self.touch()
        self._sink.emit(event)

    def touch(self) -> None:
        """Record activity without an event."""
        self._last = self._clock.now()

    @contextmanager
    def exempt(self) -> Iterator[None]:
        """Suspend the watchdog while the body runs (e.g. waiting for an upload to commit)."""
        self._exempt += 1
        try:
            yield
        finally:
            self._exempt -= 1
            self.touch()

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Await ``attempt()``; cancel it and raise StallError if it stops making progress."""
        if self.timeout is None:
            return await attempt()
        timeout = self.timeout
        self.touch()
        scope = anyio.CancelScope()
        error: Exception | None = None
        finished = False
        result: T | None = None
        async with anyio.create_task_group() as tg:

            async def watchdog() -> None:
                while True:
                    remaining = self._last + timeout - self._clock.now()
                    if self._exempt:
                        remaining = timeout
                    elif remaining <= 0:
                        scope.cancel()
                        return
                    await self._clock.sleep(remaining)

            tg.start_soon(watchdog)
            try:
                with scope:
                    result = await attempt()
                    finished = True
            except Exception as exc:  # re-raised below: anyio would wrap it in a group
                error = exc
            finally:
                tg.cancel_scope.cancel()
        if error is not None:
            raise error
        if not finished:
            raise StallError(f"{self._what}: no progress for {timeout:g} seconds")
        return cast(T, result)
