"""Per-host backoff shared by every worker, with an injected clock (no real sleeps)."""

from __future__ import annotations

from lorry.registry.ratelimit import BackoffPolicy, HostBackoff


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_retry_after_delays_every_request_to_the_host() -> None:
    t = FakeTime()
    backoff = HostBackoff(BackoffPolicy(), clock=t.clock, sleep=t.sleep)
    assert backoff.failed("reg:5000", retry_after=3.0) == 3.0
    # Another worker's request to the same host waits; a different host does not.
    assert backoff.wait("other:5000") == 0.0
    assert backoff.wait("reg:5000") == 3.0
    assert backoff.wait("reg:5000") == 0.0
    assert t.slept == [3.0]


def test_exponential_without_retry_after_and_reset_on_success() -> None:
    t = FakeTime()
    backoff = HostBackoff(
        BackoffPolicy(base_delay=0.5, max_delay=2.0), clock=t.clock, sleep=t.sleep
    )
    delays = [backoff.failed("h", None) for _ in range(4)]
    assert delays == [0.5, 1.0, 2.0, 2.0]
    backoff.succeeded("h")
    assert backoff.failures("h") == 0
    assert backoff.failed("h", None) == 0.5
