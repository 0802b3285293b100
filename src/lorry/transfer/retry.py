"""The retry policy shared by downloads and uploads (xfer-spec §2.4, §3.2, §7.9, §7.18).

``attempts`` is the **total** number of attempts: ``attempts=5`` means the work is tried at most
five times (moby's later ``max-download-attempts=N`` allowed N+1 tries; lorry does not copy that
quirk). Only failures that :func:`lorry.errors.is_retryable` accepts are retried, so integrity
errors, not-found, auth and disk-full fail at once. Between attempts the policy waits
``base_delay × failures`` seconds (5 s, 10 s, 15 s, …) — or the ``retry_after`` the error carries,
when the server said how long to wait — and reports a once-per-second countdown
``Retrying in N seconds`` (``1 second`` singular) on the transfer's progress line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from lorry.errors import InvalidInputError, LorryError, is_retryable
from lorry.progress import ProgressEvent
from lorry.transfer.clock import Clock, SystemClock

__all__ = ["DEFAULT_ATTEMPTS", "RetryPolicy", "retry_status"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Default total attempts per transfer (moby's seed constant).
DEFAULT_ATTEMPTS = 5


def retry_status(seconds: int) -> str:
    """The countdown status text: ``Retrying in 5 seconds`` / ``Retrying in 1 second``."""
    unit = "second" if seconds == 1 else "seconds"
    return f"Retrying in {seconds} {unit}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transfer's work is retried.

    ``attempts``: total attempts (≥ 1). ``base_delay``: seconds per failure of the linear
    backoff. ``max_retry_after``: a server-requested wait longer than this is not worth waiting
    for, so the error is raised instead. ``clock``: injected so tests never wait.
    """

    attempts: int = DEFAULT_ATTEMPTS
    base_delay: float = 5.0
    max_retry_after: float = 300.0
    clock: Clock = field(default_factory=SystemClock)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise InvalidInputError(
                f"invalid number of attempts {self.attempts}: it counts total attempts, minimum 1"
            )
        if self.base_delay < 0 or self.max_retry_after < 0:
            raise InvalidInputError("retry delays must not be negative")

    def delay(self, failures: int, error: BaseException) -> float | None:
        """Seconds to wait after the ``failures``-th failure, or None to give up now."""
        if failures >= self.attempts or not is_retryable(error):
            return None
        retry_after = error.retry_after if isinstance(error, LorryError) else None
        if retry_after is None:
            return self.base_delay * failures
        if retry_after > self.max_retry_after:
            return None
        return max(0.0, retry_after)

    async def run(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        emit: Callable[[ProgressEvent], None],
        line_id: str,
        what: str,
    ) -> T:
        """Call ``attempt`` until it succeeds or the policy gives up; re-raise the last error.

        ``emit`` receives the countdown events for ``line_id``; ``what`` names the work in log
        lines (``downloading layer e7d92cdc71fe``). Cancellation is never retried: it is not an
        ``Exception`` and passes straight through, also out of a retry delay.
        """
        failures = 0
        while True:
            try:
                return await attempt()
            except Exception as exc:
                failures += 1
                wait = self.delay(failures, exc)
                if wait is None:
                    raise
                log.info("%s failed, retrying (%d/%d): %s", what, failures, self.attempts, exc)
                await self._countdown(wait, emit, line_id)

    async def _countdown(
        self, seconds: float, emit: Callable[[ProgressEvent], None], line_id: str
    ) -> None:
        remaining = seconds
        while remaining > 0:
            emit(ProgressEvent(id=line_id, status=retry_status(math.ceil(remaining))))
            step = min(1.0, remaining - math.ceil(remaining) + 1.0)
            await self.clock.sleep(step)
            remaining -= step
