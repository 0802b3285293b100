"""The job both managers run per blob: the descriptor's work, retried, under a stall watchdog."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

from lorry.transfer.clock import Clock, SystemClock
from lorry.transfer.manager import Job, TransferContext
from lorry.transfer.protocols import TransferProgress
from lorry.transfer.retry import RetryPolicy
from lorry.transfer.stall import DEFAULT_STALL_TIMEOUT, StallGuard

__all__ = ["GuardedRetry"]

T = TypeVar("T")


@dataclass(frozen=True)
class GuardedRetry:
    """Run a descriptor's work with the retry policy, each attempt under a stall watchdog."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    clock: Clock = field(default_factory=SystemClock)

    def job(
        self,
        work: Callable[[TransferProgress], Awaitable[T]],
        close: Callable[[], None],
        line_id: str,
        what: str,
    ) -> Job[T]:
        """A transfer job: ``close`` runs once the transfer is released, ``work`` per attempt."""

        def job(ctx: TransferContext) -> Awaitable[T]:
            ctx.on_released(close)
            return self._run(ctx, work, line_id, what)

        return job

    async def _run(
        self,
        ctx: TransferContext,
        work: Callable[[TransferProgress], Awaitable[T]],
        line_id: str,
        what: str,
    ) -> T:
        guard = StallGuard(ctx, timeout=self.stall_timeout, clock=self.clock, what=what)

        async def attempt() -> T:
            return await guard.run(partial(work, guard))

        return await self.retry.run(attempt, emit=ctx.emit, line_id=line_id, what=what)
