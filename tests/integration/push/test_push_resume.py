"""``kill -9`` of ``lorry push`` mid-layer, then the same push again: it continues the upload.

The store holds one image with a ~95 MiB incompressible layer, put there from an OCI layout (no
distribution metadata, so nothing can be mounted). The push goes to the real registry through a
FaultProxy. The layer goes up in 16 MiB PATCH chunks; the proxy passes three and holds the
fourth without forwarding a byte of it — as a front proxy that buffers request bodies (nginx's
default) does while the client sends — and the push is killed there, at ~50 %. The second push
asks the saved upload URL where the registry stands and sends only the rest.

docker-registry 2.8 itself cannot continue an upload whose last PATCH it saw only part of (it
keeps the bytes, then declares the session invalid: its ``_state`` names the old offset), so a
kill whose chunk reached the registry halfway starts over; the 404 case covers that fallback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lorry.digest import Digest
from lorry.testing.builder import BuiltImage, LayerSpec, build_image
from lorry.testing.faultproxy import (
    Fault,
    FaultProxy,
    HoldRequest,
    RequestRecord,
    StripHeader,
)
from lorry.testing.registry import RegistryServer
from lorry.transports.registry import RESUME_CHUNK_SIZE

pytestmark = pytest.mark.integration

#: One layer of ~95 MiB of random bytes: its gzip is about as large.
LAYER = LayerSpec(files=2, size=100_000_000, random_fraction=1.0, extras=False)
#: Chunks the proxy lets through before it holds one: 48 MiB, about half the layer.
PASSED = 3
NAME = "resume/img:v1"
LIMIT = 20.0


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return build_image(tmp_path_factory.mktemp("resume-image"), layers=[LAYER], seed=8801)


@pytest.fixture(scope="module")
def template(image: BuiltImage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the image, from its layout (so no registry is known to hold its layer)."""
    root = tmp_path_factory.mktemp("resume-store") / "store"
    src = f"oci:{image.layout}:{image.tag}"
    done = subprocess.run(
        _lorry(root, "copy", "-q", src, f"lorry:{NAME}"), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return root


@pytest.fixture
def root(template: Path, tmp_path: Path) -> Path:
    """A private copy of the store."""
    dst = tmp_path / "store"
    shutil.copytree(template, dst)
    return dst


@pytest.fixture
def layer(image: BuiltImage) -> tuple[Digest, int]:
    digest = image.layer_digests[0]
    return digest, image.blob_path(digest).stat().st_size


def _lorry(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "lorry", "--root", str(root), *args]


def _push(root: Path, dst: str) -> list[str]:
    return _lorry(root, "push", "-q", NAME, dst)


def _wait_for(condition: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + LIMIT
    while not condition():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"lorry push exited {proc.returncode} before {what}: {err}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def _saved(root: Path) -> list[Path]:
    return sorted((root / "uploads").glob("*.json"))


@pytest.fixture
def killed(root: Path, proxy: FaultProxy, layer: tuple[Digest, int]) -> Iterator[str]:
    """A push killed while its fourth chunk is held; yields the destination reference."""
    dst = f"{proxy.host}/resume/{os.urandom(4).hex()}:v1"
    proxy.add(Fault(method="PATCH", path="/blobs/uploads/", times=PASSED, action=StripHeader("X")))
    hold = HoldRequest(60.0)
    proxy.add(Fault(method="PATCH", path="/blobs/uploads/", action=hold))
    proc = subprocess.Popen(_push(root, dst), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(hold.started.is_set, "the held chunk", proc)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert proxy.blob_bytes_received == PASSED * RESUME_CHUNK_SIZE
    assert len(_saved(root)) == 1
    proxy.clear()
    yield dst


def _push_again(root: Path, proxy: FaultProxy, dst: str) -> tuple[str, int, list[RequestRecord]]:
    """Push again: the pushed reference, upload bytes the registry received, requests seen."""
    before, seen = proxy.blob_bytes_received, len(proxy.requests)
    done = subprocess.run(_push(root, dst), capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    sent = proxy.blob_bytes_received - before
    return done.stdout.decode().strip(), sent, proxy.requests[seen:]


def _status_checks(requests: list[RequestRecord]) -> list[int | None]:
    """The statuses of GETs on upload URLs (asking where a session stands)."""
    return [r.status for r in requests if r.method == "GET" and "/blobs/uploads/" in r.path]


def _pull_back(registry: RegistryServer, dst: str, tmp_path: Path) -> None:
    """The pushed image pulls (verified) into a fresh store."""
    ref = f"{registry.host}/{dst.partition('/')[2]}"
    done = subprocess.run(
        _lorry(tmp_path / "pulled", "pull", "-q", ref), capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()


def test_a_killed_push_continues_its_upload(
    killed: str,
    root: Path,
    proxy: FaultProxy,
    registry: RegistryServer,
    image: BuiltImage,
    layer: tuple[Digest, int],
    tmp_path: Path,
) -> None:
    _, size = layer
    pushed, sent, requests = _push_again(root, proxy, killed)
    assert pushed == f"{killed}@{image.manifest_digest}"
    assert sent < 0.6 * size, (sent, size)
    patches = [r for r in requests if r.method == "PATCH"]
    assert patches[0].headers["Content-Range"].startswith(f"{PASSED * RESUME_CHUNK_SIZE}-")
    assert _status_checks(requests) == [204]  # asked where the saved session stands, once
    assert _saved(root) == []
    _pull_back(registry, killed, tmp_path)


def test_a_session_the_registry_forgot_starts_over(
    killed: str,
    root: Path,
    proxy: FaultProxy,
    registry: RegistryServer,
    image: BuiltImage,
    layer: tuple[Digest, int],
    tmp_path: Path,
) -> None:
    _, size = layer
    location = json.loads(_saved(root)[0].read_bytes())["location"]
    with urllib.request.urlopen(urllib.request.Request(location, method="DELETE")) as resp:
        assert resp.status == 204  # the registry forgets the session
    pushed, sent, requests = _push_again(root, proxy, killed)
    assert pushed == f"{killed}@{image.manifest_digest}"
    assert sent >= size
    assert _status_checks(requests) == [404]
    assert _saved(root) == []
    _pull_back(registry, killed, tmp_path)


@pytest.mark.parametrize("change", ["digest", "host"])
def test_a_saved_session_for_another_blob_or_host_is_not_used(
    change: str,
    killed: str,
    root: Path,
    proxy: FaultProxy,
    registry: RegistryServer,
    image: BuiltImage,
    layer: tuple[Digest, int],
) -> None:
    _, size = layer
    path = _saved(root)[0]
    record = json.loads(path.read_bytes())
    with FaultProxy(registry.url) as other:
        if change == "digest":
            record["digest"] = str(Digest.of(b"another blob"))
        else:  # the same session, reached through another host
            record["location"] = record["location"].replace(proxy.host, other.host, 1)
        path.write_text(json.dumps(record))
        pushed, sent, requests = _push_again(root, proxy, killed)
        assert other.requests == []
    assert pushed == f"{killed}@{image.manifest_digest}"
    assert sent >= size  # a fresh upload
    assert _status_checks(requests) == []
    assert _saved(root) == []


def test_a_push_killed_mid_chunk_still_pushes_the_image(
    root: Path, proxy: FaultProxy, registry: RegistryServer, image: BuiltImage, tmp_path: Path
) -> None:
    """No front proxy: the registry saw part of a chunk, invalidates the session, lorry starts over.

    (Should the kill land between two chunks, the session is continued instead: both pass.)
    """
    dst = f"{proxy.host}/resume/{os.urandom(4).hex()}:v1"
    half = image.blob_path(image.layer_digests[0]).stat().st_size // 2
    proc = subprocess.Popen(_push(root, dst), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: proxy.blob_bytes_received >= half, "half the layer", proc)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    pushed, _, requests = _push_again(root, proxy, dst)
    assert pushed == f"{dst}@{image.manifest_digest}"
    assert _status_checks(requests) in ([404], [204])
    assert _saved(root) == []
    _pull_back(registry, dst, tmp_path)
