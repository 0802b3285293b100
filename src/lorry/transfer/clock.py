"""Time as an injectable dependency, so retry delays and stall timeouts never make a test wait.

Production code uses :class:`SystemClock` (anyio's monotonic clock and ``anyio.sleep``); tests
pass a fake whose ``sleep`` advances a counter and returns at once.
"""

from __future__ import annotations

from typing import Protocol

import anyio

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """A monotonic clock and a way to sleep on it."""

    def now(self) -> float:
        """Seconds on a monotonic scale (only differences matter)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``; must be a cancellation point."""


class SystemClock:
    """The real clock of the running event loop."""

    def now(self) -> float:
        """The event loop's monotonic time."""
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await anyio.sleep(seconds)
