"""Tests of DownloadManager: xfer-spec §6 tests 7-9, extras A and F, §7.27 blob dedup."""

from __future__ import annotations

import anyio
import pytest
from xfer_fakes import Concurrency, FakeClock, FakeDescriptor, FakeLayerStore, RecordingSink

from lorry.digest import DiffID, Digest, chain_id
from lorry.errors import IntegrityError, UnavailableError
from lorry.progress import CallbackSink, ProgressEvent
from lorry.transfer.download import DownloadManager
from lorry.transfer.limits import Limits
from lorry.transfer.retry import RetryPolicy

pytestmark = pytest.mark.anyio

NAMES = ["id1", "id2", "id3", "id2", "id4", "id5"]


def diff_of(name: str) -> DiffID:
    return DiffID(Digest.of((name * 5).encode()))


def descriptors(counter: Concurrency | None = None, **per_name: dict) -> list[FakeDescriptor]:  # type: ignore[type-arg]
    out = []
    for name in NAMES:
        kwargs = dict(per_name.get(name, {}))
        out.append(FakeDescriptor(name, counter=counter, **kwargs))
    return out


def manager(store: FakeLayerStore, clock: FakeClock, attempts: int = 5) -> DownloadManager:  # type: ignore[type-arg]
    return DownloadManager(
        store,
        limits=Limits(downloads=3, cpu=2),
        retry=RetryPolicy(attempts=attempts, clock=clock),
        stall_timeout=None,
    )


def test_chain_id_vector() -> None:
    """xfer-spec §2.6 test vector."""
    assert str(diff_of("id1")).endswith(
        "68e2c75dc5c78ea9240689c60d7599766c213ae210434c53af18470ae8c53ec1"
    )
    assert str(chain_id([diff_of("id1"), diff_of("id2")])).endswith(
        "512cdd6c83f5a85fc0f18c0e30c41a01d43402ed55ca4c9eebe2a780abcf8298"
    )


async def test_successful_download(clock: FakeClock) -> None:
    """§6.7 and extra F: existing prefix, parallel fetch, retry, dedup, status order, refs."""
    store = FakeLayerStore()
    base = store.register_now(b"id1" * 5, None)  # the test's own reference
    counter = Concurrency(3)
    descs = descriptors(counter, id1={"diff_id": diff_of("id1")}, id4={"fail_times": 1})
    sink = RecordingSink()
    async with manager(store, clock) as dm:
        rootfs, release = await dm.download([], descs, sink)
        assert rootfs == [diff_of(n) for n in NAMES]
        assert sink.statuses("id1") == ["Already exists"]
        for name in ("id2", "id3", "id5"):
            statuses = [s for s in sink.statuses(name) if s != "Waiting"]
            assert statuses == [
                "Pulling fs layer",
                "Downloading",
                "Verifying Checksum",
                "Download complete",
                "Extracting",
                "Pull complete",
            ], name
        id4 = [s for s in sink.statuses("id4") if s != "Waiting"]
        retrying = [f"Retrying in {n} second{'s' if n > 1 else ''}" for n in range(5, 0, -1)]
        assert id4 == [
            "Pulling fs layer",
            "Downloading",
            *retrying,
            "Downloading",
            "Verifying Checksum",
            "Download complete",
            "Extracting",
            "Pull complete",
        ]
        assert sink.statuses("id5")[:2] == ["Pulling fs layer", "Waiting"]  # 4th fetch queued
        for i, desc in enumerate(descs):
            assert desc.registered_ids == [diff_of(NAMES[i])]
        assert counter.peak <= 3
        assert descs[1].calls + descs[3].calls == 1  # the duplicate id2 is fetched once
        # F: until release, every layer of the image stays referenced.
        top = store.layers[chain_id(rootfs)]
        assert top.refs == 1 and len(store.layers) == 6
        await release()
        await release()  # idempotent
        await dm.wait_idle()
        assert list(store.layers.values()) == [base] and base.refs == 1
    assert all(d.closed == 1 for d in descs)


async def test_cancelled_download(clock: FakeClock) -> None:
    """§6.8 and extra F: caller cancellation propagates as itself; nothing stays referenced."""
    store = FakeLayerStore()
    descs = descriptors()
    with anyio.CancelScope() as scope:

        def cancel_on_download(event: ProgressEvent) -> None:
            if event.status == "Downloading":
                scope.cancel()

        async with manager(store, clock) as dm:
            await dm.download([], descs, CallbackSink(cancel_on_download))
    assert scope.cancelled_caught
    assert store.layers == {}
    assert dm.fetches.live_keys == [] and dm.layers.live_keys == []
    assert all(d.closed == 1 for d in descs)


@pytest.mark.parametrize(("failures", "ok"), [(2, True), (4, True), (5, False)])
async def test_max_download_attempts(clock: FakeClock, failures: int, ok: bool) -> None:
    """§6.9 with lorry's meaning: attempts=5 allows five calls in total."""
    store = FakeLayerStore()
    descs = descriptors(id4={"fail_times": failures})
    async with manager(store, clock, attempts=5) as dm:
        if ok:
            _, release = await dm.download([], descs, RecordingSink())
            await release()
        else:
            with pytest.raises(UnavailableError, match=f"simulating download attempt 5/{failures}"):
                await dm.download([], descs, RecordingSink())
        await dm.wait_idle()
    assert store.layers == {}
    assert descs[4].calls == min(failures + 1, 5)


async def test_failed_download_drops_every_reference(clock: FakeClock) -> None:
    """Extra F on failure: a hopeless error fails the pull at once and leaks nothing."""
    store = FakeLayerStore()
    base = store.register_now(b"id1" * 5, None)
    descs = descriptors(
        id1={"diff_id": diff_of("id1")}, id4={"fail_times": 1, "error": IntegrityError}
    )
    async with manager(store, clock) as dm:
        with pytest.raises(IntegrityError):
            await dm.download([], descs, RecordingSink())
        await dm.wait_idle()
    assert descs[4].calls == 1
    assert list(store.layers.values()) == [base] and base.refs == 1
    assert all(d.closed == 1 for d in descs)


async def run_pull(
    dm: DownloadManager,  # type: ignore[type-arg]
    descs: list[FakeDescriptor],
    out: dict[str, object],
    name: str,
) -> None:
    rootfs, release = await dm.download([], descs, RecordingSink())
    out[name] = rootfs
    await release()


async def test_cancelling_one_pull_leaves_the_other_intact(clock: FakeClock) -> None:
    """Extra A: two pulls share every transfer; cancelling one does not disturb the other."""
    store = FakeLayerStore()
    gate = anyio.Event()
    a = descriptors(**{n: {"gate": gate} for n in NAMES})
    b = descriptors(**{n: {"gate": gate} for n in NAMES})
    out: dict[str, object] = {}
    async with manager(store, clock) as dm, anyio.create_task_group() as tg:
        with anyio.CancelScope() as scope_a:
            tg.start_soon(run_pull, dm, b, out, "b")
            await anyio.wait_all_tasks_blocked()
            async with anyio.create_task_group() as tg_a:
                tg_a.start_soon(run_pull, dm, a, out, "a")
                await anyio.wait_all_tasks_blocked()
                scope_a.cancel()
        gate.set()
    assert "a" not in out and out["b"] == [diff_of(n) for n in NAMES]
    assert sum(d.calls for d in a + b) == 5  # five distinct blobs, each fetched once
    assert store.layers == {}


async def test_same_blob_on_different_parents_is_fetched_once(clock: FakeClock) -> None:
    """§7.27: pulls needing one blob on different parents share the network fetch."""
    store = FakeLayerStore()
    gate = anyio.Event()
    a = [FakeDescriptor("baseA", gate=gate), FakeDescriptor("shared", gate=gate)]
    b = [FakeDescriptor("baseB", gate=gate), FakeDescriptor("shared", gate=gate)]
    out: dict[str, object] = {}
    async with manager(store, clock) as dm:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_pull, dm, a, out, "a")
            tg.start_soon(run_pull, dm, b, out, "b")
            await anyio.wait_all_tasks_blocked()
            gate.set()
        await dm.wait_idle()
    assert a[1].calls + b[1].calls == 1
    assert out["a"] == [diff_of("baseA"), diff_of("shared")]
    assert out["b"] == [diff_of("baseB"), diff_of("shared")]
    assert all(d.closed == 1 for d in a + b)


async def test_everything_exists_and_per_operation_limit(clock: FakeClock) -> None:
    """All layers present: no transfer, the handle holds the top; a per-call limit of 1."""
    store = FakeLayerStore()
    counter = Concurrency(1)
    descs = [FakeDescriptor(n, counter=counter) for n in ("a", "b", "c")]
    async with manager(store, clock) as dm:
        rootfs, release = await dm.download([], descs, RecordingSink(), limits=Limits(1, 1, 1))
        await release()
        await dm.wait_idle()
        assert counter.peak == 1 and store.layers == {}
        # now keep the layers with a held release and pull again, knowing the DiffIDs
        descs2 = [FakeDescriptor(n) for n in ("a", "b", "c")]
        rootfs, keep = await dm.download([], descs2, RecordingSink())
        again = [FakeDescriptor(n, diff_id=diff_of(n)) for n in ("a", "b", "c")]
        sink = RecordingSink()
        rootfs2, release2 = await dm.download([], again, sink)
        assert rootfs2 == rootfs and dm.fetches.live_keys == []
        assert [e.status for e in sink.events] == ["Already exists"] * 3
        assert again[2].registered_ids == [diff_of("c")]
        await keep()
        assert len(store.layers) == 3  # still held by the second handle
        await release2()
    assert store.layers == {}
    assert all(d.closed == 1 for d in descs + descs2 + again)
