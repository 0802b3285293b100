"""Backoff shared per host across every concurrent request of a session.

When a registry answers 429 or 503, every worker talking to it should slow down, not just the
one that got the answer: otherwise N parallel layer downloads hammer the registry N times
(regclient's per-host backoff, protocol-notes §4.10). :class:`HostBackoff` keeps, per host, the
earliest time the next request may start and a failure count for exponential backoff; every
request waits for its host's slot before it is sent. The clock and the sleep function are
injected so tests never really sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BackoffPolicy", "HostBackoff"]


@dataclass(frozen=True)
class BackoffPolicy:
    """How long to wait between attempts and when to give up."""

    #: Attempts per request (the first one included) on 429 / 5xx / lost connections.
    max_attempts: int = 4
    #: First delay when the server gives no ``Retry-After``; doubles on each failure.
    base_delay: float = 0.5
    #: Longest computed delay.
    max_delay: float = 10.0
    #: Longest ``Retry-After`` honoured; a longer one fails at once with a clear error.
    retry_after_cap: float = 60.0

    def delay(self, failures: int, retry_after: float | None) -> float:
        """The wait before the next attempt after ``failures`` consecutive failures."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return min(self.max_delay, self.base_delay * 2.0 ** max(0, failures - 1))


class HostBackoff:
    """Per-host "not before" times, shared by every thread of a session."""

    def __init__(
        self,
        policy: BackoffPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy or BackoffPolicy()
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._not_before: dict[str, float] = {}
        self._failures: dict[str, int] = {}

    def wait(self, host: str) -> float:
        """Block until ``host`` may be contacted again; return how long was waited."""
        with self._lock:
            until = self._not_before.get(host, 0.0)
        delay = until - self.clock()
        if delay <= 0:
            return 0.0
        self.sleep(delay)
        return delay

    def failed(self, host: str, retry_after: float | None) -> float:
        """Record a temporary failure at ``host``; return the delay now imposed on it."""
        with self._lock:
            failures = self._failures.get(host, 0) + 1
            self._failures[host] = failures
            delay = self.policy.delay(failures, retry_after)
            until = self.clock() + delay
            self._not_before[host] = max(self._not_before.get(host, 0.0), until)
            return delay

    def succeeded(self, host: str) -> None:
        """Record a success at ``host``: the failure count starts again from zero."""
        with self._lock:
            self._failures.pop(host, None)

    def failures(self, host: str) -> int:
        """Consecutive temporary failures recorded for ``host``."""
        with self._lock:
            return self._failures.get(host, 0)
