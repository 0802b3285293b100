"""Tests of RetryPolicy and StallGuard with an injected clock (extra D; xfer-spec §6.9, §7.15)."""

from __future__ import annotations

import anyio
import pytest
from xfer_fakes import FakeClock, RecordingSink

from lorry.errors import (
    AuthError,
    DiskFullError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    StallError,
    UnavailableError,
)
from lorry.progress import ProgressEvent
from lorry.transfer.retry import RetryPolicy, retry_status
from lorry.transfer.stall import StallGuard

pytestmark = pytest.mark.anyio


def failing(times: int, make=lambda i, k: UnavailableError(f"attempt {i}/{k}")):  # type: ignore[no-untyped-def]
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls <= times:
            raise make(calls, times)
        return "ok"

    return attempt, lambda: calls


@pytest.mark.parametrize(
    ("failures", "attempts", "error"),
    [(2, 5, None), (4, 5, None), (5, 5, "attempt 5/5"), (6, 5, "attempt 5/6"), (1, 1, "1/1")],
)
async def test_attempts_mean_total_attempts(
    clock: FakeClock, failures: int, attempts: int, error: str | None
) -> None:
    """§6.9 rewritten for lorry's meaning: ``attempts=N`` allows N calls in total."""
    attempt, calls = failing(failures)
    policy = RetryPolicy(attempts=attempts, clock=clock)
    sink = RecordingSink()
    if error is None:
        assert await policy.run(attempt, emit=sink.emit, line_id="x", what="t") == "ok"
        assert calls() == failures + 1
    else:
        with pytest.raises(UnavailableError, match=error):
            await policy.run(attempt, emit=sink.emit, line_id="x", what="t")
        assert calls() == attempts


@pytest.mark.parametrize("attempts", [0, -1])
def test_attempts_below_one_rejected(attempts: int) -> None:
    with pytest.raises(InvalidInputError, match="total attempts"):
        RetryPolicy(attempts=attempts)


@pytest.mark.parametrize(
    "exc",
    [
        IntegrityError("digest mismatch"),
        NotFoundError("blob unknown"),
        AuthError("denied"),
        DiskFullError("full"),
    ],
)
async def test_hopeless_errors_stop_after_one_attempt(clock: FakeClock, exc: Exception) -> None:
    """Extra D: non-retryable errors (moby's DoNotRetry) fail on the first attempt."""
    attempt, calls = failing(3, make=lambda i, k: exc)
    with pytest.raises(type(exc)):
        await RetryPolicy(clock=clock).run(attempt, emit=lambda e: None, line_id="x", what="t")
    assert calls() == 1 and clock.sleeps == []


async def test_countdown_statuses_and_linear_delay(clock: FakeClock) -> None:
    """Extra D: 5 s × n backoff with a once-per-second countdown N..1, singular for 1."""
    attempt, _ = failing(2)
    sink = RecordingSink()
    assert await RetryPolicy(clock=clock).run(attempt, emit=sink.emit, line_id="x", what="t")
    statuses = [e.status for e in sink.events]
    first = [retry_status(n) for n in range(5, 0, -1)]
    second = [retry_status(n) for n in range(10, 0, -1)]
    assert statuses == first + second
    assert statuses[4] == "Retrying in 1 second" and statuses[0] == "Retrying in 5 seconds"
    assert sum(clock.sleeps) == 15


async def test_retry_after_is_honoured_and_capped(clock: FakeClock) -> None:
    """A server's Retry-After replaces the backoff; an absurd one is not waited for."""
    attempt, _ = failing(1, make=lambda i, k: UnavailableError("429", retry_after=2.5))
    sink = RecordingSink()
    await RetryPolicy(clock=clock).run(attempt, emit=sink.emit, line_id="x", what="t")
    assert clock.sleeps == [0.5, 1.0, 1.0]
    assert [e.status for e in sink.events] == [retry_status(n) for n in (3, 2, 1)]

    attempt, calls = failing(1, make=lambda i, k: UnavailableError("429", retry_after=3600))
    with pytest.raises(UnavailableError):
        await RetryPolicy(clock=clock).run(attempt, emit=sink.emit, line_id="x", what="t")
    assert calls() == 1


async def test_cancellation_during_retry_delay_is_not_retried() -> None:
    """Cancelling during the countdown ends the retry loop at once."""
    clock = FakeClock(auto=False)
    attempt, calls = failing(5)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(
                lambda: RetryPolicy(clock=clock).run(
                    attempt, emit=lambda e: None, line_id="x", what="t"
                )
            )
            await anyio.wait_all_tasks_blocked()
            assert clock.sleeps == [1.0]
            scope.cancel()
    assert scope.cancelled_caught and calls() == 1


async def test_stalled_attempt_fails_with_retryable_error(clock: FakeClock) -> None:
    """§7.15: no progress for the timeout → StallError (retryable), the next attempt runs."""
    sink = RecordingSink()
    guard = StallGuard(sink, timeout=30, clock=clock, what="downloading x")
    attempts = 0

    async def attempt() -> str:
        nonlocal attempts
        attempts += 1
        guard.emit(ProgressEvent(id="x", status="Downloading", current=1, total=9))
        if attempts == 1:
            await anyio.sleep_forever()
        return "ok"

    with pytest.raises(StallError, match="no progress for 30 seconds"):
        await guard.run(attempt)
    policy = RetryPolicy(clock=clock)
    assert await policy.run(lambda: guard.run(attempt), emit=sink.emit, line_id="x", what="t")
    assert attempts == 2


async def test_progress_keeps_the_watchdog_quiet_and_exempt_suspends_it() -> None:
    """Progress events and exempt sections reset the stall timer (manual clock)."""
    clock = FakeClock(auto=False)
    guard = StallGuard(RecordingSink(), timeout=30, clock=clock)
    step = anyio.Event()
    done = anyio.Event()

    async def attempt() -> str:
        await step.wait()
        guard.emit(ProgressEvent(id="x", status="Pushing", current=5))
        with guard.exempt():
            await done.wait()
        return "ok"

    result: list[str] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            result.append(await guard.run(attempt))

        tg.start_soon(run)
        await anyio.wait_all_tasks_blocked()
        clock.advance(29)
        step.set()
        await anyio.wait_all_tasks_blocked()
        clock.advance(29)  # 58 s since start but only 29 since the last progress
        await anyio.wait_all_tasks_blocked()
        clock.advance(100)  # exempt: waiting for the commit is not a stall
        await anyio.wait_all_tasks_blocked()
        assert not result
        done.set()
    assert result == ["ok"]


def test_stall_timeout_must_be_positive() -> None:
    with pytest.raises(InvalidInputError):
        StallGuard(RecordingSink(), timeout=0)


async def test_errors_pass_through_the_guard_unwrapped(clock: FakeClock) -> None:
    """An attempt's own error leaves the watchdog's task group as itself, so it is retried."""
    guard = StallGuard(RecordingSink(), timeout=30, clock=clock)
    attempt, calls = failing(1)
    assert await RetryPolicy(clock=clock).run(
        lambda: guard.run(attempt), emit=lambda e: None, line_id="x", what="t"
    )
    assert calls() == 2
