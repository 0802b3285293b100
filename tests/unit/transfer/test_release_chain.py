"""Releasing a long chain of transfers is a loop, not recursion (issue 16, item 5).

Each layer transfer holds a watcher of the layer below and lets it go from a release hook, so
releasing the top of a 10,000-layer chain once ran 10,000 nested hook calls and died of
RecursionError. These tests hold the chain to a flat stack.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable

import anyio
import anyio.lowlevel
import pytest
from xfer_fakes import FakeDescriptor

from lorry.digest import ChainID, DiffID, Digest
from lorry.errors import StoreError
from lorry.progress import NullSink
from lorry.transfer.download import DownloadManager
from lorry.transfer.limits import Limits
from lorry.transfer.manager import TransferContext, TransferManager, Watcher
from lorry.transfer.protocols import ExtractProgress

pytestmark = pytest.mark.anyio

CHAIN = 10_000
#: Layers in the download-manager case: well past the recursion limit, cheaper than 10,000.
PULL_LAYERS = 2_000


def _job(value: int, parent: Watcher[int] | None, released: list[int]):  # type: ignore[no-untyped-def]
    def job(ctx: TransferContext) -> Awaitable[int]:
        if parent is not None:
            ctx.on_released(parent.release)
        ctx.on_released(lambda: released.append(value))

        async def run() -> int:
            await anyio.lowlevel.checkpoint()
            return value

        return run()

    return job


async def test_a_chain_of_10000_transfers_is_released_without_recursion(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The top watcher's release runs every hook down the chain, in order, with no error."""
    assert sys.getrecursionlimit() < CHAIN  # else the old recursive release would pass too
    released: list[int] = []
    async with TransferManager() as mgr:
        top: Watcher[int] | None = None
        for i in range(CHAIN):
            top = await mgr.watch(f"layer-{i}", _job(i, top, released), NullSink())
        assert top is not None
        assert await top.result() == CHAIN - 1
        await mgr.wait_idle()
        assert released == []  # every transfer is still held by the one above it
        with caplog.at_level(logging.ERROR):
            await top.release()
        assert released == list(range(CHAIN - 1, -1, -1))
        assert "RecursionError" not in caplog.text and not caplog.records
        await mgr.wait_idle()


async def test_hooks_that_await_still_all_run() -> None:
    """Hooks that await (and so yield to other tasks) do not lose the rest of the chain."""
    ran: list[int] = []
    async with TransferManager() as mgr:
        top: Watcher[int] | None = None
        for i in range(50):

            async def record(i: int = i) -> None:
                await anyio.sleep(0)
                ran.append(i)

            top = await mgr.watch(f"k{i}", _job(i, top, []), NullSink())
            top.transfer.on_released(record)
        assert top is not None
        await top.result()
        await top.release()
        assert sorted(ran) == list(range(50))  # all done by the time release returns
        await mgr.wait_idle()


class _FlatLayerStore:
    """A layer store that refuses layers above ``depth`` (as the real one refuses 125+), and
    whose own release is a loop (the fake in xfer_fakes recurses itself)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.refs: dict[ChainID, int] = {}
        self.depth_of: dict[ChainID | None, int] = {None: 0}

    async def get(self, chain_id: ChainID, key: str = "") -> None:
        return None

    async def register(
        self, handle: bytes, parent: ChainID | None, progress: ExtractProgress
    ) -> _Layer:
        depth = self.depth_of[parent] + 1
        if depth > self.depth:
            raise StoreError(f"layer {depth}: more than {self.depth} layers")
        diff = DiffID(Digest.of(handle))
        cid = ChainID(diff if parent is None else Digest.of(f"{parent} {diff}".encode()))
        self.depth_of[cid] = depth
        self.refs[cid] = self.refs.get(cid, 0) + 1
        return _Layer(cid, diff)

    async def release(self, layer: _Layer) -> None:
        self.refs[layer.chain_id] -= 1


class _Layer:
    def __init__(self, chain_id: ChainID, diff_id: DiffID) -> None:
        self.chain_id = chain_id
        self.diff_id = diff_id


async def test_a_pull_of_thousands_of_layers_that_fails_deep_down_unwinds_cleanly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The issue's case: the store refuses layer 126; every layer above it still holds its
    parent, and letting them all go logs no RecursionError and leaks no reference."""
    assert sys.getrecursionlimit() < PULL_LAYERS
    store = _FlatLayerStore(depth=125)
    descs = [FakeDescriptor(f"l{i}") for i in range(PULL_LAYERS)]
    with caplog.at_level(logging.ERROR):
        async with DownloadManager(
            store, limits=Limits(downloads=8, cpu=2), stall_timeout=None
        ) as dm:  # type: ignore[type-var]
            with pytest.raises(StoreError, match="more than 125 layers"):
                await dm.download([], descs, NullSink())
            await dm.wait_idle()
    assert not caplog.records, caplog.text[:2000]
    assert set(store.refs.values()) == {0}
