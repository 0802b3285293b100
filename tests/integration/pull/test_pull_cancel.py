"""A pull stuck on a stalled connection ends promptly when cancelled or when the watchdog fires.

The session's socket timeout is set far beyond the stall, so these tests would hang (and hit
pytest's timeout) if cancellation waited for the blocked read instead of cutting it.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.to_thread
import pytest
from pull_helpers import ingest_bytes, push, wait_for

from lorry.errors import StallError
from lorry.ops.pull import PullOptions, pull, pull_sync
from lorry.ops.session import SessionOptions
from lorry.store import Store
from lorry.store.fsck import fsck
from lorry.testing.builder import BuiltImage, LayerSpec
from lorry.testing.faultproxy import Fault, FaultProxy, Stall
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer
from lorry.transfer import RetryPolicy

pytestmark = pytest.mark.integration

PATIENT = SessionOptions(timeout=3600.0)  # the socket itself would wait an hour
ONE_TRY = RetryPolicy(attempts=1)


def _stalled(
    proxy: FaultProxy, registry: RegistryServer, image_builder: ImageBuilder, seed: int
) -> tuple[BuiltImage, str, Stall]:
    built = image_builder(
        layers=[LayerSpec(files=3, size=4_000_000, random_fraction=1.0)], seed=seed
    )
    ref = f"{proxy.host}/{push(built, registry, 'pull/cancel').partition('/')[2]}"
    stall = Stall(built.layer_sizes[0] // 2, 3600.0)
    proxy.add(Fault(path=f"/blobs/{built.layer_digests[0]}$", action=stall))
    return built, ref, stall


def test_stall_watchdog_fails_the_attempt_and_keeps_the_bytes(
    tmp_path: Path, proxy: FaultProxy, registry: RegistryServer, image_builder: ImageBuilder
) -> None:
    built, ref, stall = _stalled(proxy, registry, image_builder, seed=41)
    root = tmp_path / "root"
    with Store.open(root) as store:
        with pytest.raises(StallError):
            pull_sync(
                ref,
                PullOptions(retry=ONE_TRY, stall_timeout=2.0),
                store=store,
                session_options=PATIENT,
            )
        assert stall.started.is_set() and not stall.released.is_set()
        assert ingest_bytes(root) > 0
        stall.release()
        proxy.clear()
        before = proxy.blob_bytes_sent
        result = pull_sync(ref, PullOptions(retry=ONE_TRY), store=store)
        assert result.image_id == built.config_digest
        assert proxy.blob_bytes_sent - before < built.layer_sizes[0] + len(built.config_bytes)
        assert fsck(store).ok


def test_cancelling_a_stalled_pull_returns_at_once(
    tmp_path: Path, proxy: FaultProxy, registry: RegistryServer, image_builder: ImageBuilder
) -> None:
    _, ref, stall = _stalled(proxy, registry, image_builder, seed=42)
    root = tmp_path / "root"
    outcome: list[str] = []

    async def main(store: Store) -> None:
        async with anyio.create_task_group() as tg:

            async def one() -> None:
                try:
                    await pull(
                        ref,
                        PullOptions(stall_timeout=None),
                        store=store,
                        session_options=PATIENT,
                    )
                    outcome.append("finished")
                except anyio.get_cancelled_exc_class():
                    outcome.append("cancelled")
                    raise

            tg.start_soon(one)
            await anyio.to_thread.run_sync(stall.started.wait, 60)
            # The proxy has sent half the layer, but under load the pull's thread may not have
            # read any of it from the socket yet: cancel only once bytes are on disk.
            await anyio.to_thread.run_sync(
                wait_for, lambda: ingest_bytes(root) > 0, "the stalled layer's bytes on disk"
            )
            tg.cancel_scope.cancel()

    with Store.open(root) as store:
        anyio.run(main, store)
        assert outcome == ["cancelled"]
        assert not stall.released.is_set()  # it ended while the connection was still stalled
        assert ingest_bytes(root) > 0
        stall.release()
        assert fsck(store).ok
