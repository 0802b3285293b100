"""RateLimit-* headers, budget pacing and per-host token buckets, with an injected clock."""

from __future__ import annotations

import threading
import time

import pytest

from lorry.errors import InvalidInputError
from lorry.registry.ratelimit import BackoffPolicy, Budget, HostBackoff, parse_budget


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def headers(**values: str):  # type: ignore[no-untyped-def]
    low = {k.replace("_", "-").lower(): v for k, v in values.items()}
    return lambda name: low.get(name.lower())


@pytest.mark.parametrize(
    ("given", "budget"),
    [
        ({}, None),
        ({"RateLimit_Remaining": "50"}, Budget(50)),
        (
            {"RateLimit_Limit": "100", "RateLimit_Remaining": "7", "RateLimit_Reset": "30"},
            Budget(7, 100, 30.0),
        ),
        (  # Docker Hub
            {"ratelimit_limit": "100;w=21600", "ratelimit_remaining": "76;w=21600"},
            Budget(76, 100, None, 21600.0),
        ),
        (
            {"RateLimit_Limit": "100, 100;w=60", "RateLimit_Remaining": "3"},
            Budget(3, 100, None, 60.0),
        ),
        ({"RateLimit_Remaining": "3", "RateLimit_Policy": "10;w=5"}, Budget(3, None, None, 5.0)),
        ({"RateLimit": "limit=100, remaining=9, reset=12"}, Budget(9, 100, 12.0)),
        ({"RateLimit": '"default";r=4;t=8'}, Budget(4, None, 8.0)),
        ({"RateLimit_Remaining": "many"}, None),
    ],
)
def test_parse_budget(given: dict[str, str], budget: Budget | None) -> None:
    assert parse_budget(headers(**given)) == budget


def test_pacing_starts_below_the_low_water_mark_and_spreads_the_rest() -> None:
    t = FakeTime()
    b = HostBackoff(BackoffPolicy(slow_below=0.2), clock=t.clock, sleep=t.sleep)
    assert b.observe("hub:443", Budget(50, 100, 60.0)) == 0.0
    assert b.wait("hub:443") == 0.0 and b.wait("hub:443") == 0.0
    assert b.observe("hub:443", Budget(10, 100, 20.0)) == 2.0  # 10 left for 20 s
    b.wait("hub:443")
    assert b.wait("hub:443") == 2.0
    assert b.wait("other:443") == 0.0  # another host is not slowed
    assert b.observe("hub:443", Budget(0, 100, 5.0)) == 5.0  # none left: hold until reset
    assert b.wait("hub:443") == pytest.approx(5.0)


def test_a_shard_paces_for_its_share_and_the_cap_holds() -> None:
    t = FakeTime()
    b = HostBackoff(BackoffPolicy(max_pace=30.0), clock=t.clock, sleep=t.sleep)
    b.share_budget(3)
    assert b.observe("h", Budget(6, 100, 10.0)) == 5.0  # 2 requests are this shard's
    assert b.observe("h", Budget(3, None, None, 21600.0)) == 30.0
    with pytest.raises(InvalidInputError):
        b.share_budget(0)


def test_token_bucket_caps_requests_per_second_per_host() -> None:
    t = FakeTime()
    b = HostBackoff(clock=t.clock, sleep=t.sleep)
    b.set_rate("slow:80", 2.0, burst=2)
    waits = [b.wait("slow:80") for _ in range(5)]
    assert waits == [0.0, 0.0, 0.5, 0.5, 0.5]
    assert [b.wait("fast:80") for _ in range(5)] == [0.0] * 5
    with pytest.raises(InvalidInputError, match="request rate for slow:80"):
        b.set_rate("slow:80", 0)


def test_a_wait_looks_again_when_another_429_moved_the_slot() -> None:
    t = FakeTime()
    b = HostBackoff(clock=t.clock, sleep=t.sleep)
    b.failed("h", 1.0)
    real_sleep = t.sleep

    def sleep_and_fail_again(seconds: float) -> None:
        real_sleep(seconds)
        if len(t.slept) == 1:
            b.failed("h", 2.0)  # another worker's 429 arrives while this one sleeps

    b.sleep = sleep_and_fail_again
    assert b.wait("h") == pytest.approx(3.0)


def test_one_hosts_backoff_never_blocks_another_hosts_requests() -> None:
    b = HostBackoff()
    b.failed("stuck:80", 2.0)
    blocked = threading.Thread(target=b.wait, args=("stuck:80",), daemon=True)
    blocked.start()
    start = time.monotonic()
    for _ in range(20):
        b.wait("free:80")
    assert time.monotonic() - start < 0.5
    assert blocked.is_alive()
