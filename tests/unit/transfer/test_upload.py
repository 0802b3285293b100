"""Tests of UploadManager: xfer-spec §6 tests 10-11, fully qualified keys, fail-fast."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest
from xfer_fakes import Concurrency, FakeClock, RecordingSink

from lorry.digest import Digest
from lorry.errors import IntegrityError, UnavailableError
from lorry.progress import CallbackSink, ProgressEvent
from lorry.transfer.limits import Limits
from lorry.transfer.protocols import TransferProgress, upload_key
from lorry.transfer.retry import RetryPolicy
from lorry.transfer.upload import UploadManager

pytestmark = pytest.mark.anyio


class FakeUpload:
    """Mock push descriptor: emits Pushing 0..10, then its final status; may fail first."""

    def __init__(
        self,
        name: str,
        *,
        registry: str = "reg.example",
        fail_times: int = 0,
        error: type[Exception] = UnavailableError,
        final: str = "Pushed",
        counter: Concurrency | None = None,
        gate: anyio.Event | None = None,
    ) -> None:
        self.name = name
        self.digest = Digest.of(name.encode())
        self.registry = registry
        self.fail_times = fail_times
        self.error = error
        self.final = final
        self.counter = counter
        self.gate = gate
        self.calls = 0
        self.closed = 0

    def key(self) -> str:
        return upload_key(self.registry, "library/app", self.digest)

    def id(self) -> str:
        return self.digest.short

    def diff_id(self) -> Digest:
        return self.digest

    async def upload(self, progress: TransferProgress) -> str:
        if self.counter is not None:
            self.counter.enter()
        try:
            self.calls += 1
            for n in range(11):
                progress.emit(ProgressEvent(id=self.id(), status="Pushing", current=n, total=10))
                await anyio.lowlevel.checkpoint()
            if self.gate is not None:
                with progress.exempt():
                    await self.gate.wait()
            if self.calls <= self.fail_times:
                raise self.error(f"simulating upload attempt {self.calls}")
            progress.emit(ProgressEvent(id=self.id(), status=self.final))
            return f"{self.registry}:{self.digest}"
        finally:
            if self.counter is not None:
                self.counter.leave()

    def close(self) -> None:
        self.closed += 1


def manager(clock: FakeClock, uploads: int = 3) -> UploadManager[str]:
    return UploadManager(
        limits=Limits(uploads=uploads),
        retry=RetryPolicy(clock=clock),
        stall_timeout=None,
    )


async def test_successful_upload(clock: FakeClock) -> None:
    """§6.10: 6 descriptors, 5 keys: the duplicate is uploaded once, the flaky one retried."""
    counter = Concurrency(3)
    descs = [FakeUpload(f"l{i}", counter=counter) for i in range(5)]
    descs[2].fail_times = 1
    descs[4].final = "Mounted from library/base"
    dup = FakeUpload("l1", counter=counter)
    descs.insert(3, dup)
    sink = RecordingSink()
    async with manager(clock) as um:
        results = await um.upload(descs, sink)
        await um.wait_idle()
    assert results == [f"reg.example:{d.digest}" for d in descs]
    assert counter.peak <= 3
    assert descs[1].calls + dup.calls == 1 and descs[2].calls == 2
    assert [e.status for e in sink.events[:6]] == ["Preparing"] * 6
    assert sink.statuses(descs[0].id())[-1] == "Pushed"
    assert sink.statuses(descs[-1].id())[-1] == "Mounted from library/base"
    assert "Waiting" in sink.statuses(descs[-1].id())  # 5 uploads, limit 3
    assert "Retrying in 5 seconds" in sink.statuses(descs[2].id())
    assert all(d.closed == 1 for d in descs)


async def test_cancelled_upload(clock: FakeClock) -> None:
    """§6.11: the caller's cancellation propagates as itself and stops every upload."""
    descs = [FakeUpload(f"l{i}") for i in range(4)]
    with anyio.CancelScope() as scope:

        def cancel(event: ProgressEvent) -> None:
            if event.status == "Pushing":
                scope.cancel()

        async with manager(clock) as um:
            await um.upload(descs, CallbackSink(cancel))
    assert scope.cancelled_caught
    assert um.uploads.live_keys == []
    assert all(d.closed == 1 for d in descs)


async def test_keys_are_fully_qualified(clock: FakeClock) -> None:
    """One digest pushed to two registries is two uploads (xfer-spec §7.12)."""
    a, b = FakeUpload("l", registry="one.example"), FakeUpload("l", registry="two.example")
    async with manager(clock) as um:
        assert await um.upload([a, b], RecordingSink()) == [
            f"one.example:{a.digest}",
            f"two.example:{b.digest}",
        ]
    assert a.calls == b.calls == 1


async def test_first_failure_in_time_fails_fast(clock: FakeClock) -> None:
    """A hopeless failure ends the push while an earlier upload still waits for its commit."""
    gate = anyio.Event()
    slow, bad = FakeUpload("slow", gate=gate), FakeUpload("bad", fail_times=1, error=IntegrityError)
    outcome: list[BaseException] = []
    async with manager(clock) as um, anyio.create_task_group() as tg:

        async def push() -> None:
            try:
                await um.upload([slow, bad], RecordingSink())
            except IntegrityError as exc:
                outcome.append(exc)

        tg.start_soon(push)
        await anyio.wait_all_tasks_blocked()
        assert len(outcome) == 1 and bad.calls == 1
        assert not gate.is_set() and um.uploads.live_keys == []
    assert slow.closed == bad.closed == 1


async def test_per_operation_upload_limit(clock: FakeClock) -> None:
    counter = Concurrency(1)
    descs = [FakeUpload(f"l{i}", counter=counter) for i in range(4)]
    async with manager(clock, uploads=5) as um:
        await um.upload(descs, RecordingSink(), limits=Limits(uploads=1))
    assert counter.peak == 1
