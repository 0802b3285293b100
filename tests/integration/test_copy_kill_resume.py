"""``kill -9`` of ``lorry copy`` into a layout or an archive, then the same copy again.

The source is a real registry behind a FaultProxy; one layer's GET stalls after about 2.5 MiB
(lorry reads 1 MiB chunks, so 2 MiB of it reach the partial file) while the other blobs
complete. The first ``lorry copy`` is killed with SIGKILL there; the second, with the fault
gone, must exit 0 and leave a destination skopeo reads, having asked the registry again only
for the stalled blob, with a ``Range`` that starts where the partial data ends. Every blob that
was delivered before the kill is GET once over both runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lorry.digest import Digest
from lorry.testing.builder import BuiltImage, LayerSpec
from lorry.testing.faultproxy import Fault, FaultProxy, RequestRecord, Stall
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout, run_skopeo, skopeo_copy

pytestmark = pytest.mark.integration

MIB = 1 << 20
#: Three incompressible layers of about 4 MB: compressed size ≈ layer size.
LAYERS = [LayerSpec(files=2, size=4_000_000, random_fraction=1.0)] * 3
#: Where the stalled layer's body stops: past two whole 1 MiB reads, short of the third.
STALL_AT = 2 * MIB + MIB // 2
#: What of the stalled layer is on disk when the copy is killed.
PARTIAL = STALL_AT // MIB * MIB
LIMIT = 20.0


def _wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + LIMIT
    while not condition():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"lorry copy exited {proc.returncode} before {what}: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _lorry(root: Path, src: str, dst: str) -> list[str]:
    return [sys.executable, "-m", "lorry", "--root", str(root), "copy", "-q", src, dst]


def _gets(proxy: FaultProxy, digest: Digest) -> list[RequestRecord]:
    return [r for r in proxy.requests if r.method == "GET" and r.path.endswith(f"/blobs/{digest}")]


def _range(record: RequestRecord) -> str | None:
    return next((v for k, v in record.headers.items() if k.lower() == "range"), None)


@pytest.fixture(scope="module")
def pushed(image_builder: ImageBuilder, registry: RegistryServer) -> tuple[BuiltImage, str]:
    built: BuiltImage = image_builder(layers=LAYERS, seed=7301)
    ref = push_layout(built, registry, "copy/kill-resume", "v1")
    return built, ref.removeprefix("docker://").partition("/")[2]  # repo:tag, no host


#: kind → (destination reference, the directory that holds blobs/ and .lorry-ingest/).
Target = Callable[[Path], tuple[str, Path]]
TARGETS: dict[str, Target] = {
    "oci": lambda tmp: (f"oci:{tmp / 'layout'}:v1", tmp / "layout"),
    "oci-archive": lambda tmp: (
        f"oci-archive:{tmp / 'img.tar'}:v1",
        tmp / "img.tar.lorry-partial",
    ),
    "docker-archive": lambda tmp: (
        f"docker-archive:{tmp / 'img.tar'}:kill/resume:v1",
        tmp / "img.tar.lorry-partial",
    ),
}


def _check_valid(kind: str, dst: str, tmp_path: Path, built: BuiltImage) -> None:
    """skopeo reads the destination and finds the built image's config and layers in it."""
    out = tmp_path / "skopeo-dir"
    src = dst.rsplit(":", 2)[0] if kind == "docker-archive" else dst
    skopeo_copy(src, f"dir:{out}")
    manifest = json.loads((out / "manifest.json").read_bytes())
    assert manifest["config"]["digest"] == str(built.config_digest)
    if kind != "docker-archive":  # skopeo may recompress what it reads from a docker-archive
        assert [x["digest"] for x in manifest["layers"]] == [str(d) for d in built.layer_digests]
        assert json.loads(run_skopeo(["inspect", "--raw", src])) == json.loads(built.manifest_bytes)
    for layer in manifest["layers"]:
        assert (out / Digest.parse(layer["digest"]).encoded).is_file()


@pytest.mark.parametrize("kind", list(TARGETS))
def test_a_killed_copy_resumes_without_fetching_a_delivered_blob_again(
    kind: str,
    pushed: tuple[BuiltImage, str],
    proxy: FaultProxy,
    tmp_path: Path,
) -> None:
    built, repo_tag = pushed
    src = f"docker://{proxy.host}/{repo_tag}"
    dst, partial_root = TARGETS[kind](tmp_path)
    stalled = built.layer_digests[1]
    others = [d for d in built.layer_digests if d != stalled]
    stall = Stall(STALL_AT, 60.0)
    proxy.add(Fault(path=f"/blobs/{stalled}$", times=-1, action=stall))
    root = tmp_path / "store"
    blobs = partial_root / "blobs" / "sha256"
    partial = partial_root / ".lorry-ingest" / "sha256" / f"{stalled.encoded}.data"

    def delivered() -> bool:
        if not all((blobs / d.encoded).is_file() for d in others):
            return False
        return partial.is_file() and partial.stat().st_size >= PARTIAL

    proc = subprocess.Popen(
        _lorry(root, src, dst), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        _wait_for(delivered, "the other blobs and 2 MiB of the stalled one", proc)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert partial.stat().st_size == PARTIAL
    # Delivered before the kill: the other layers, and the config if its turn came.
    done = [d for d in [*others, built.config_digest] if (blobs / d.encoded).is_file()]
    if kind != "oci":
        assert not Path(dst.split(":")[1]).exists()  # no archive before a commit
    first_run = len(proxy.requests)
    proxy.clear()

    again = subprocess.run(_lorry(root, src, dst), capture_output=True, timeout=60, check=False)
    assert again.returncode == 0, again.stderr.decode()
    assert again.stdout.decode().strip() == str(built.manifest_digest)
    _check_valid(kind, dst, tmp_path, built)

    for digest in done:
        assert len(_gets(proxy, digest)) == 1, (digest, _gets(proxy, digest))
    assert len(_gets(proxy, built.config_digest)) == 1
    second = [
        r
        for r in proxy.requests[first_run:]
        if r.method == "GET" and r.path.endswith(f"/blobs/{stalled}")
    ]
    assert second, "the second run never asked for the stalled blob"
    assert _range(second[0]) == f"bytes={PARTIAL}-", second[0].headers
    assert all(_range(r) is not None for r in second)
    if kind == "oci":
        assert not (partial_root / ".lorry-ingest").exists()
    else:
        assert not partial_root.exists()  # staging is removed once the archive is written
        # nothing else beside the archive (a copy between two non-store media opens no store)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["img.tar", "skopeo-dir"]
