"""Tests of TransferManager: xfer-spec §6 tests 1-6 and the extra B, C and E, event-gated."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from xfer_fakes import RecordingSink, progress

from lorry.errors import CancelledError, InvalidInputError
from lorry.progress import NullSink, ProgressEvent
from lorry.transfer.manager import TransferContext, TransferManager

pytestmark = pytest.mark.anyio


def counting_job(line_id: str, steps: int = 10):  # type: ignore[no-untyped-def]
    async def job(ctx: TransferContext) -> str:
        for n in range(steps + 1):
            ctx.emit(progress(line_id, n))
            await anyio.lowlevel.checkpoint()
        return line_id

    return job


def assert_increasing_to_10(sink: RecordingSink, line_id: str) -> None:
    values = [e.current for e in sink.for_id(line_id) if e.current is not None]
    assert values == sorted(set(values)), values
    assert values[-1] == 10


async def test_transfer_fan_out() -> None:
    """§6.1: three transfers under limit 5 share one sink; each id climbs to 10."""
    sink = RecordingSink()
    async with TransferManager(5) as mgr:
        watchers = [await mgr.watch(f"id{i}", counting_job(f"id{i}"), sink) for i in range(3)]
        assert mgr.active == 3
        for i, w in enumerate(watchers):
            assert await w.result() == f"id{i}"
            await w.release()
    for i in range(3):
        assert_increasing_to_10(sink, f"id{i}")


async def test_concurrency_limit() -> None:
    """§6.2: 8 transfers under limit 3 never run more than 3 at once; all finish (FIFO)."""
    running = peak = 0
    started: list[str] = []

    def job_for(line_id: str):  # type: ignore[no-untyped-def]
        async def job(ctx: TransferContext) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            started.append(line_id)
            await counting_job(line_id)(ctx)
            running -= 1

        return job

    sink = RecordingSink()
    async with TransferManager(3) as mgr:
        ws = [await mgr.watch(f"id{i}", job_for(f"id{i}"), sink) for i in range(8)]
        assert (mgr.active, mgr.queued) == (3, 5)
        for w in ws:
            await w.result()
            await w.release()
    assert peak == 3
    assert started == [f"id{i}" for i in range(8)]
    for i in range(8):
        assert_increasing_to_10(sink, f"id{i}")


async def test_inactive_jobs_hand_their_slot_on() -> None:
    """§6.3: jobs that go inactive free their slot while still not done."""
    running = peak = 0
    gate = anyio.Event()

    def job_for(line_id: str):  # type: ignore[no-untyped-def]
        async def job(ctx: TransferContext) -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await counting_job(line_id)(ctx)
            running -= 1
            ctx.set_inactive()
            await gate.wait()

        return job

    sink = RecordingSink()
    async with TransferManager(3) as mgr:
        ws = [await mgr.watch(f"id{i}", job_for(f"id{i}"), sink) for i in range(8)]
        await anyio.wait_all_tasks_blocked()
        # Every job reached 10 while none has finished: only possible through hand-off.
        for i in range(8):
            assert_increasing_to_10(sink, f"id{i}")
        assert mgr.active == 0 and all(not w.transfer.is_done for w in ws)
        gate.set()
        for w in ws:
            await w.result()
            await w.release()
    assert peak == 3


async def test_watch_release_cancels_only_after_last_watcher() -> None:
    """§6.4: cancellation is requested only when the last of 5 watchers lets go."""
    ready = anyio.Event()

    async def job(ctx: TransferContext) -> None:
        await ready.wait()
        n = 0
        while True:
            ctx.emit(progress("x", n, total=0))
            n += 1
            await anyio.lowlevel.checkpoint()

    sinks = [RecordingSink() for _ in range(5)]
    released_hooks = 0

    def hook() -> None:
        nonlocal released_hooks
        released_hooks += 1

    async with TransferManager(5) as mgr:
        first = await mgr.watch("k", job, sinks[0])
        first.transfer.on_released(hook)
        ws = [first] + [await mgr.watch("k", job, s) for s in sinks[1:]]
        assert all(w.transfer is first.transfer for w in ws)
        ready.set()
        for s in sinks:
            await s.first.wait()
        for w, s in zip(ws, sinks, strict=True):
            assert not w.transfer.cancel_requested
            await w.release()
            s.closed = True
            await anyio.lowlevel.checkpoint()
        await first.transfer.wait_done()
        assert first.transfer.cancel_requested
        with pytest.raises(CancelledError):
            first.transfer.outcome()
        assert first.transfer.is_released and released_hooks == 1
        assert mgr.live_keys == []


async def test_watch_finished_transfer_gets_final_status() -> None:
    """§6.5 and §7.28: a watcher added after the end sees the final status; released once."""
    calls = 0

    async def job(ctx: TransferContext) -> int:
        nonlocal calls
        calls += 1
        ctx.emit(ProgressEvent(id="x", status="Pull complete"))
        return 7

    hooks = 0

    def hook() -> None:
        nonlocal hooks
        hooks += 1

    late = RecordingSink()
    async with TransferManager(5) as mgr:
        w1 = await mgr.watch("k", job, RecordingSink())
        w1.transfer.on_released(hook)
        w2 = await mgr.watch("k", job, RecordingSink())
        assert w2.transfer is w1.transfer and not w2.is_creator
        await w1.transfer.wait_done()
        assert mgr.live_keys == []
        w3 = w1.transfer.watch(late)
        assert [e.status for e in late.events] == ["Pull complete"]
        assert await w3.result() == 7
        for w in (w1, w2, w3):
            await w.release()
            await w.release()  # idempotent
    assert calls == 1 and hooks == 1 and w1.transfer.is_released


async def test_duplicate_transfer_runs_job_once() -> None:
    """§6.6: five watches of one key call the job exactly once; all share the transfer."""
    gate = anyio.Event()
    calls = 0

    async def job(ctx: TransferContext) -> None:
        nonlocal calls
        calls += 1
        await gate.wait()
        while True:
            ctx.emit(progress("x", calls, total=0))
            await anyio.sleep_forever()

    sinks = [RecordingSink() for _ in range(5)]
    async with TransferManager(5) as mgr:
        ws = [await mgr.watch("k", job, s) for s in sinks]
        assert [w.is_creator for w in ws] == [True, False, False, False, False]
        gate.set()
        for s in sinks:
            await s.first.wait()
        for w in ws:
            assert not w.transfer.cancel_requested
            await w.release()
        t = ws[0].transfer
        await t.wait_done()
        assert t.is_released and t.cancel_requested
    assert calls == 1


async def test_caller_during_cancellation_gets_a_new_transfer() -> None:
    """Extra B: a watch arriving while the transfer is being cancelled starts a fresh one."""
    cleanup = anyio.Event()
    calls: list[str] = []

    async def slow_to_die(ctx: TransferContext) -> str:
        calls.append("first")
        try:
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await cleanup.wait()
        return "unreachable"

    async def second(ctx: TransferContext) -> str:
        calls.append("second")
        return "fresh"

    async with TransferManager(2) as mgr:
        w1 = await mgr.watch("k", slow_to_die, NullSink())
        await anyio.wait_all_tasks_blocked()
        await w1.release()
        assert w1.transfer.cancel_requested and not w1.transfer.is_done
        got = []
        async with anyio.create_task_group() as tg:

            async def joiner() -> None:
                got.append(await mgr.watch("k", second, NullSink()))

            tg.start_soon(joiner)
            await anyio.wait_all_tasks_blocked()
            assert calls == ["first"] and not got
            cleanup.set()
        w2 = got[0]
        assert w2.is_creator and w2.transfer is not w1.transfer
        assert await w2.result() == "fresh"
        await w2.release()
    assert calls == ["first", "second"]


async def test_limits_validation_unlimited_and_runtime_changes() -> None:
    """Extra C: negative limits rejected, 0 is unlimited, raising the limit starts work now."""
    with pytest.raises(InvalidInputError):
        TransferManager(-1)
    gate = anyio.Event()
    started: list[int] = []

    def job_for(i: int):  # type: ignore[no-untyped-def]
        async def job(ctx: TransferContext) -> None:
            started.append(i)
            await gate.wait()

        return job

    async with TransferManager(0) as mgr:
        ws = [await mgr.watch(f"k{i}", job_for(i), NullSink()) for i in range(10)]
        await anyio.wait_all_tasks_blocked()
        assert len(started) == 10 and mgr.queued == 0
        with pytest.raises(InvalidInputError):
            mgr.set_limit(-2)
        gate.set()
        for w in ws:
            await w.result()
            await w.release()

    gate = anyio.Event()
    started.clear()
    waiting = RecordingSink()
    async with TransferManager(1) as mgr:
        ws = [
            await mgr.watch(
                f"k{i}", job_for(i), waiting, waiting=ProgressEvent(id=f"k{i}", status="Waiting")
            )
            for i in range(4)
        ]
        await anyio.wait_all_tasks_blocked()
        assert started == [0] and mgr.queued == 3
        assert [e.id for e in waiting.events] == ["k1", "k2", "k3"]
        mgr.set_limit(3)
        await anyio.wait_all_tasks_blocked()
        assert started == [0, 1, 2] and mgr.active == 3
        mgr.set_limit(1)  # lowering never stops running work, and starts nothing new
        await ws[0].release()
        await ws[0].transfer.wait_done()
        await anyio.wait_all_tasks_blocked()
        assert started == [0, 1, 2] and mgr.active == 2
        gate.set()
        for w in ws[1:]:
            await w.result()
            await w.release()
    assert started == [0, 1, 2, 3]


async def test_late_watcher_sees_latest_then_newer() -> None:
    """Extra E: a late watcher gets the current event first, then only newer ones."""
    step = anyio.Event()

    async def job(ctx: TransferContext) -> None:
        ctx.emit(progress("x", 1))
        ctx.emit(progress("x", 2))
        await step.wait()
        ctx.emit(progress("x", 3))

    early, late = RecordingSink(), RecordingSink()
    async with TransferManager(1) as mgr:
        w1 = await mgr.watch("k", job, early)
        await anyio.wait_all_tasks_blocked()
        w2 = await mgr.watch("k", job, late)
        assert [e.current for e in late.events] == [2]
        step.set()
        await w2.result()
        assert [e.current for e in late.events] == [2, 3]
        assert [e.current for e in early.events] == [1, 2, 3]
        await w1.release()
        await w2.release()


async def test_released_queued_transfer_never_runs_and_closing_cancels_all() -> None:
    """A queued transfer released before start never runs; aclose cancels running jobs."""
    started: list[str] = []

    def job_for(name: str):  # type: ignore[no-untyped-def]
        async def job(ctx: TransferContext) -> None:
            started.append(name)
            await anyio.sleep_forever()

        return job

    mgr = TransferManager(1)
    async with mgr:
        w1 = await mgr.watch("a", job_for("a"), NullSink())
        w2 = await mgr.watch("b", job_for("b"), NullSink())
        await w2.release()
        await w2.transfer.wait_done()
        assert mgr.queued == 0
        await anyio.wait_all_tasks_blocked()
    assert started == ["a"]
    with pytest.raises(CancelledError):
        await w1.result()
    with pytest.raises(CancelledError):
        await mgr.watch("c", job_for("c"), NullSink())
    await w1.release()
    assert w1.transfer.is_released


async def test_job_error_reaches_every_watcher() -> None:
    """The manager stores the job's error; every watcher's result raises it."""

    async def job(ctx: TransferContext) -> None:
        ctx.emit(ProgressEvent(id="x", status="Downloading"))
        raise InvalidInputError("bad layer")

    async with TransferManager(2) as mgr:
        w1 = await mgr.watch("k", job, NullSink())
        w2 = await mgr.watch("k", job, NullSink())
        for w in (w1, w2):
            with pytest.raises(InvalidInputError, match="bad layer"):
                await w.result()
            await w.release()


async def test_progress_from_a_worker_thread() -> None:
    """The byte path runs in threads: events emitted there reach the watchers in order."""
    from lorry.transfer.stall import StallGuard

    def byte_path(guard: StallGuard) -> str:
        for n in range(5):
            guard.emit(progress("x", n, total=4))
        return "done"

    async def job(ctx: TransferContext) -> str:
        guard = StallGuard(ctx, timeout=30)
        return await guard.run(lambda: anyio.to_thread.run_sync(byte_path, guard))

    sink = RecordingSink()
    async with TransferManager(1) as mgr:
        w = await mgr.watch("k", job, sink)
        assert await w.result() == "done"
        await w.release()
    assert [e.current for e in sink.events] == [0, 1, 2, 3, 4]
