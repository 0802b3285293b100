"""Backoff, pacing and request rates shared per host across every concurrent request of a session.

When a registry answers 429 or 503, every worker talking to it should slow down, not just the
one that got the answer: otherwise N parallel layer downloads hammer the registry N times
(regclient's per-host backoff, protocol-notes §4.10). :class:`HostBackoff` keeps, per host, the
earliest time the next request may start and a failure count for exponential backoff; every
request waits for its host's slot before it is sent, and looks again after each sleep (another
worker's 429 may have moved the slot meanwhile). Two more rules share that slot:

- **budget pacing**: a response that says how many requests are left (``RateLimit-Remaining``
  with ``RateLimit-Reset`` or a window, Docker Hub's ``ratelimit-remaining: N;w=S``, or the
  structured ``RateLimit:`` field; :func:`parse_budget`) spreads the rest of the budget over the
  time left once less than :attr:`BackoffPolicy.slow_below` of it remains, and holds the host
  until the reset when nothing is left — before the registry has to answer 429;
- **token buckets**: :meth:`HostBackoff.set_rate` caps one host at N requests per second.

Waits sleep outside the lock, per host: one host's backoff never holds up another host's
requests. The clock and the sleep function are injected so tests never really sleep.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lorry.errors import InvalidInputError

__all__ = ["BackoffPolicy", "Budget", "HostBackoff", "parse_budget"]


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
    #: Pace requests once the remaining budget falls below this fraction of the limit.
    slow_below: float = 0.2
    #: …or below this many requests when the registry does not say its limit.
    slow_below_count: int = 10
    #: Longest gap pacing puts between two requests (a registry's 429 decides beyond it).
    max_pace: float = 60.0

    def delay(self, failures: int, retry_after: float | None) -> float:
        """The wait before the next attempt after ``failures`` consecutive failures."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return min(self.max_delay, self.base_delay * 2.0 ** max(0, failures - 1))


@dataclass(frozen=True)
class Budget:
    """A registry's word on its request budget: ``remaining`` of ``limit`` requests, for the
    next ``reset`` seconds or per ``window`` seconds (either may be unknown)."""

    remaining: int
    limit: int | None = None
    reset: float | None = None
    window: float | None = None


_ITEM = re.compile(r"^\s*(\d+)\s*((?:;[^,]*)?)")
_PARAM = re.compile(r"([A-Za-z]+)\s*=\s*\"?([^;,\"]*)\"?")


def _item(value: str | None) -> tuple[int, dict[str, str]] | None:
    """``100;w=60`` → ``(100, {"w": "60"})``: the first item of a list header."""
    if not value:
        return None
    m = _ITEM.match(value)
    if m is None:
        return None
    params = {k.lower(): v.strip() for k, v in _PARAM.findall(m.group(2))}
    return int(m.group(1)), params


def _seconds(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 and math.isfinite(value) else None


def parse_budget(header: Callable[[str], str | None]) -> Budget | None:
    """The budget a response's headers state (``header(name)`` reads one), or None.

    Reads ``RateLimit-Limit``/``-Remaining``/``-Reset`` (IETF draft 03, also Docker Hub's
    ``N;w=SECONDS`` items), ``RateLimit-Policy`` for the window, and the structured
    ``RateLimit: limit=…, remaining=…, reset=…`` or ``…;r=…;t=…`` field of later drafts.
    """
    combined = header("RateLimit")
    if combined:
        fields = {k.lower(): v.strip() for k, v in _PARAM.findall(combined)}
        left = fields.get("remaining", fields.get("r"))
        if left is not None and left.isdigit():
            limit = fields.get("limit")
            return Budget(
                int(left),
                int(limit) if limit and limit.isdigit() else None,
                _seconds(fields.get("reset", fields.get("t"))),
            )
    remaining = _item(header("RateLimit-Remaining"))
    if remaining is None:
        return None
    limit = _item(header("RateLimit-Limit"))
    texts = [
        header(n) or "" for n in ("RateLimit-Remaining", "RateLimit-Limit", "RateLimit-Policy")
    ]
    windows = [_seconds(v) for k, v in _PARAM.findall(";".join(texts)) if k.lower() == "w"]
    window = next((w for w in windows if w), None)
    return Budget(
        remaining[0], limit[0] if limit else None, _seconds(header("RateLimit-Reset")), window
    )


class _Bucket:
    """A token bucket: ``rate`` requests a second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at = now

    def ready(self, now: float) -> float:
        """When the next token is there."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return now if self.tokens >= 1.0 else now + (1.0 - self.tokens) / self.rate


class HostBackoff:
    """Per-host "not before" times, pacing and rates, shared by every thread of a session."""

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
        self._pace: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._share = 1

    def set_rate(self, host: str, per_second: float, burst: int | None = None) -> None:
        """Cap ``host`` (``host:port``) at ``per_second`` requests, ``burst`` at once."""
        if not per_second > 0 or (burst is not None and burst < 1):
            raise InvalidInputError(f"request rate for {host}: must be > 0 with a burst >= 1")
        size = burst if burst is not None else max(1, math.ceil(per_second))
        with self._lock:
            self._buckets[host] = _Bucket(per_second, size, self.clock())

    def share_budget(self, clients: int) -> None:
        """This process is one of ``clients`` that share every host's stated budget."""
        if clients < 1:
            raise InvalidInputError(f"budget share: {clients} clients; must be at least 1")
        with self._lock:
            self._share = clients

    def wait(self, host: str) -> float:
        """Block until ``host`` may be contacted again; return how long was waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self.clock()
                bucket = self._buckets.get(host)
                ready = max(
                    self._not_before.get(host, 0.0),
                    self._last.get(host, -math.inf) + self._pace.get(host, 0.0),
                    bucket.ready(now) if bucket is not None else now,
                )
                if ready <= now:
                    if bucket is not None:
                        bucket.tokens -= 1.0
                    self._last[host] = now
                    return waited
            delay = ready - now
            self.sleep(delay)
            waited += delay

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

    def observe(self, host: str, budget: Budget) -> float:
        """Take a response's budget into account; return the gap now kept between requests.

        Above the low-water mark nothing changes; below it the requests left (this process's
        share of them) are spread over the time left; with none left the host is held until
        the reset (at most :attr:`BackoffPolicy.max_pace`).
        """
        policy = self.policy
        span = budget.reset if budget.reset is not None else budget.window
        low = budget.limit * policy.slow_below if budget.limit else policy.slow_below_count
        with self._lock:
            if span is None or budget.remaining >= low:
                self._pace.pop(host, None)
                return 0.0
            mine = budget.remaining / self._share
            if mine < 1.0:
                hold = min(span, policy.max_pace)
                until = self.clock() + hold
                self._not_before[host] = max(self._not_before.get(host, 0.0), until)
                self._pace.pop(host, None)
                return hold
            gap = min(span / mine, policy.max_pace)
            self._pace[host] = gap
            return gap

    def pace(self, host: str) -> float:
        """The gap pacing keeps between requests to ``host`` now (0: none)."""
        with self._lock:
            return self._pace.get(host, 0.0)
