"""Pull under faults: a flipped byte, a dropped connection, a kill halfway, shared downloads.

Faults come from a FaultProxy in front of the real registry; bytes are counted at the proxy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from pull_helpers import FAST_RETRY, ingest_bytes, pull, push, wait_for

from lorry.errors import IntegrityError, UnavailableError
from lorry.ops.pull import download_manager
from lorry.ops.pull import pull as pull_async
from lorry.store import Store
from lorry.store.fsck import fsck
from lorry.testing.builder import BuiltImage, LayerSpec
from lorry.testing.faultproxy import DropAfter, Fault, FaultProxy, FlipByte, Stall
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer
from lorry.transfer import RetryPolicy

pytestmark = pytest.mark.integration

#: Incompressible layers, so compressed bytes ≈ layer bytes and halves are meaningful.
RANDOM = [LayerSpec(files=4, size=3_000_000, random_fraction=1.0)] * 2
MIB = 1 << 20


def via(proxy: FaultProxy, ref: str) -> str:
    """The same reference, reached through the proxy."""
    return f"{proxy.host}/{ref.partition('/')[2]}"


def blob_gets(proxy: FaultProxy, digest: object) -> int:
    return sum(1 for r in proxy.requests if r.method == "GET" and r.path.endswith(f"/{digest}"))


def ingest_files(root: Path) -> list[Path]:
    return [p for p in (root / "ingest").rglob("*.data")]


def test_flipped_byte_fails_with_integrity_error_and_keeps_the_old_tag(
    store: Store, registry: RegistryServer, proxy: FaultProxy, image_builder: ImageBuilder
) -> None:
    old = image_builder(layers=1, seed=21)
    new = image_builder(layers=2, seed=22)
    ref = via(proxy, push(old, registry, "pull/flip"))
    pull(store, ref)  # the tag now points at the old image
    push_to = ref.partition("/")[2]
    from lorry.testing.skopeo import push_layout

    push_layout(new, registry, push_to.rpartition(":")[0])  # the tag moves to the new image
    bad = new.layer_digests[1]
    proxy.add(Fault(path=f"/blobs/{bad}$", times=-1, action=FlipByte(1000)))
    with pytest.raises(IntegrityError, match=str(bad)):
        pull(store, ref)
    assert blob_gets(proxy, bad) == 1  # integrity errors are not retried
    name = ref.rpartition(":")[0]
    assert store.refs.get(name, tag="latest").image_id == old.config_digest  # type: ignore[union-attr]
    assert store.images.find(new.config_digest) is None
    assert not store.content.exists(bad)
    assert not [p for p in ingest_files(store.root) if bad.encoded in p.name]
    assert fsck(store).ok


def test_dropped_connection_resumes_from_the_offset(
    store: Store, registry: RegistryServer, proxy: FaultProxy, image_builder: ImageBuilder
) -> None:
    built = image_builder(layers=RANDOM, seed=23)
    ref = via(proxy, push(built, registry, "pull/drop"))
    layer = built.layer_digests[0]
    proxy.add(Fault(path=f"/blobs/{layer}$", times=2, action=DropAfter(1_000_000)))
    result = pull(store, ref)
    assert result.image_id == built.config_digest
    ranges = [r.headers.get("Range") for r in proxy.requests if r.path.endswith(str(layer))]
    assert len(ranges) == 3 and ranges[0] is None
    # Each reconnect asks for the rest from where the bytes received so far end (an RST may
    # discard a little of what the proxy counted as sent, never more than it sent).
    offsets = [int((r or "").removeprefix("bytes=").rstrip("-")) for r in ranges[1:]]
    # How much an RST discards depends on timing, so bound each step by what was sent in it.
    assert 0 < offsets[0] <= 1_000_000
    assert offsets[0] <= offsets[1] <= offsets[0] + 1_000_000
    assert proxy.blob_bytes_sent < sum(built.layer_sizes) + len(built.config_bytes) + 2_000_000


def test_two_concurrent_pulls_fetch_a_shared_blob_once(
    store: Store, registry: RegistryServer, proxy: FaultProxy, image_builder: ImageBuilder
) -> None:
    a = image_builder(layers=RANDOM, seed=24)
    b = image_builder(layers=[*RANDOM, LayerSpec(files=3, size=100_000)], seed=24)
    assert b.layer_digests[:2] == a.layer_digests
    ref_a = via(proxy, push(a, registry, "pull/share-a"))
    ref_b = via(proxy, push(b, registry, "pull/share-b"))
    results = {}

    async def both() -> None:
        async with download_manager(store, retry=FAST_RETRY) as dm, anyio.create_task_group() as tg:

            async def one(ref: str) -> None:
                results[ref] = await pull_async(ref, store=store, download_manager=dm)

            tg.start_soon(one, ref_a)
            tg.start_soon(one, ref_b)

    anyio.run(both)
    assert results[ref_a].image_id == a.config_digest
    assert results[ref_b].image_id == b.config_digest
    for digest in a.layer_digests:
        assert blob_gets(proxy, digest) == 1
    assert fsck(store).ok


def test_killed_pull_fetches_only_the_missing_bytes_when_repeated(
    tmp_path: Path, registry: RegistryServer, proxy: FaultProxy, image_builder: ImageBuilder
) -> None:
    built: BuiltImage = image_builder(
        layers=[LayerSpec(files=4, size=8_000_000, random_fraction=1.0)] * 2, seed=25
    )
    ref = via(proxy, push(built, registry, "pull/kill"))
    total = sum(built.layer_sizes)
    # The writer gets whole 1 MiB reads: what reaches the disk before the stall is a multiple.
    stall_at = [size * 55 // 100 for size in built.layer_sizes]
    on_disk = sum(at // MIB * MIB for at in stall_at)
    for digest, at in zip(built.layer_digests, stall_at, strict=True):
        proxy.add(Fault(path=f"/blobs/{digest}$", times=1, action=Stall(at, 120.0)))
    root = tmp_path / "root"
    cmd = [sys.executable, "-m", "lorry", "--root", str(root), "pull", "--progress", "plain", ref]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # Both layers reached their stall: about half of the image's bytes are on disk.
        wait_for(
            lambda: ingest_bytes(root) >= on_disk,
            "the first run to write about half of the layers",
        )
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    proxy.clear()
    first = proxy.blob_bytes_sent
    with Store.open(root) as store:
        result = pull(store, ref)
        assert result.image_id == built.config_digest
        assert fsck(store).ok
    second = proxy.blob_bytes_sent - first
    assert second < 0.6 * total, (second, total)


def test_config_fetch_is_retried_by_the_pulls_retry_policy(
    store: Store, registry: RegistryServer, proxy: FaultProxy, image_builder: ImageBuilder
) -> None:
    built = image_builder(layers=1, seed=23)
    ref = via(proxy, push(built, registry, "pull/config-retry"))
    config = f"/blobs/{built.config_digest}$"
    proxy.add(Fault(path=config, times=1, action=DropAfter(10)))
    with pytest.raises(UnavailableError):
        pull(store, ref, retry=RetryPolicy(attempts=1))  # one attempt: the cut body is final
    proxy.add(Fault(path=config, times=2, action=DropAfter(10)))
    result = pull(store, ref)  # FAST_RETRY: three attempts, the third gets the config
    assert result.image_id == built.config_digest
    assert blob_gets(proxy, built.config_digest) == 4
