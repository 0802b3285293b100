"""Two lorry processes pulling the same image into one store fetch each blob once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pull_helpers import push

from lorry.store import Store
from lorry.store.fsck import fsck
from lorry.testing.builder import LayerSpec
from lorry.testing.faultproxy import Fault, FaultProxy, Stall
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer

pytestmark = pytest.mark.integration


def _pull(root: Path, ref: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "lorry", "--root", str(root), "pull", "--progress", "json", ref]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_second_process_waits_for_the_first_and_fetches_nothing_twice(
    tmp_path: Path, registry: RegistryServer, proxy: FaultProxy, image_builder: ImageBuilder
) -> None:
    built = image_builder(layers=[LayerSpec(files=4, size=6_000_000, random_fraction=1.0)], seed=31)
    ref = f"{proxy.host}/{push(built, registry, 'pull/two').partition('/')[2]}"
    layer = built.layer_digests[0]
    stall = proxy.add(
        Fault(path=f"/blobs/{layer}$", times=1, action=Stall(built.layer_sizes[0] // 2, 120.0))
    ).action
    assert isinstance(stall, Stall)
    root = tmp_path / "root"
    first = _pull(root, ref)
    second: subprocess.Popen[str] | None = None
    try:
        assert stall.started.wait(60), "the first pull never reached the stall"
        second = _pull(root, ref)
        assert second.stderr is not None
        # The second process reports that it waits for the blob the first one is ingesting.
        for line in second.stderr:
            event = json.loads(line)
            assert "error" not in event, event
            if event.get("status") == "Waiting" and event.get("id") == layer.short:
                break
        else:
            pytest.fail("the second pull ended without waiting for the first one's ingest")
        stall.release()
        _, err_first = first.communicate(timeout=120)
        _, err_second = second.communicate(timeout=120)
    finally:
        stall.release()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert first.returncode == 0, err_first
    assert second.returncode == 0, err_second
    layer_gets = [r for r in proxy.requests if r.method == "GET" and r.path.endswith(str(layer))]
    assert len(layer_gets) == 1
    assert proxy.blob_bytes_sent <= built.layer_sizes[0] + len(built.config_bytes)
    with Store.open(root) as store:
        assert fsck(store).ok
        assert [p.name for p in (root / "blobs" / "sha256").iterdir()].count(layer.hex) == 1
