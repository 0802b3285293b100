"""``lorry unpack docker://…``: layers applied while the ones above are still fetched (issue 12).

The top layer's blob is held by a fault proxy in front of the real registry; the lower layers
must be in DIR before it is let go (an unpack that fetched everything first would never get
there, and the hold would end by its own timeout). A fetch that fails after some layers were
applied leaves DIR marked unfinished, one error line naming the blob, and ``--force`` completes
it once the registry serves the blob again.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from unpack_helpers import lorry, stored, tree

from lorry.testing.builder import BuiltImage
from lorry.testing.faultproxy import Fault, FaultProxy, HoldRequest, Stall, Status
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout

pytestmark = pytest.mark.integration

#: How long the proxy holds the top layer at most: far longer than the lower layers need.
HOLD = 60.0


@pytest.fixture
def built(image_builder: ImageBuilder) -> BuiltImage:
    """Three layers (the unpack tests' image)."""
    image: BuiltImage = image_builder(layers=3, seed=4242)
    return image


def _remote(built: BuiltImage, registry: RegistryServer, proxy: FaultProxy, repo: str) -> str:
    """The image pushed to the registry, named through the proxy."""
    pushed = push_layout(built, registry, repo, "v1")
    return pushed.replace(registry.host, proxy.host)


class _Releaser(threading.Thread):
    """Releases ``hold`` once its request came and ``dest`` holds more than ``more_than``
    entries (files of the lower layers); ``in_time`` says that happened before the hold's
    own timeout."""

    def __init__(self, hold: Stall | HoldRequest, dest: Path, more_than: int = 0) -> None:
        super().__init__(daemon=True)
        self.hold, self.dest, self.more_than = hold, dest, more_than
        self.in_time = False

    def run(self) -> None:
        deadline = time.monotonic() + HOLD
        while time.monotonic() < deadline and not self.hold.released.is_set():
            if self.hold.started.is_set() and self._entries() > self.more_than:
                self.in_time = True
                self.hold.release()
                return
            time.sleep(0.02)

    def _entries(self) -> int:
        return len(list(self.dest.iterdir())) if self.dest.is_dir() else 0


def _unpack_held(
    hold: Stall | HoldRequest,
    root: Path,
    capsys: pytest.CaptureFixture[str],
    dest: Path,
    *args: str,
    more_than: int = 0,
) -> tuple[int, str, str, bool]:
    """``lorry unpack -q ARGS`` while :class:`_Releaser` watches ``dest`` for ``hold``; exit
    code, stdout, stderr, and whether the lower layers were in DIR while it was held."""
    watcher = _Releaser(hold, dest, more_than)
    watcher.start()
    try:
        code, out, err = lorry(root, capsys, "unpack", "-q", *args, str(dest))
    finally:
        hold.release()
        watcher.join()
    return code, out, err, watcher.in_time


def _stored_tree(
    built: BuiltImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, tuple[object, ...]]:
    """The tree an unpack of ``built`` from a store gives."""
    root = tmp_path / "ref-store"
    ref = stored(built, root, capsys, "ref")
    assert lorry(root, capsys, "unpack", "-q", ref, str(tmp_path / "ref"))[0] == 0
    return tree(tmp_path / "ref")


def test_lower_layers_are_in_dir_while_the_top_one_is_still_fetched(
    built: BuiltImage,
    registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = _remote(built, registry, proxy, "unpack/overlap")
    top = built.layer_digests[-1]
    stall = Stall(after_bytes=0, seconds=HOLD)
    proxy.add(Fault(path=f"/blobs/{top}$", action=stall))
    dest = tmp_path / "rootfs"
    code, out, err, in_time = _unpack_held(stall, tmp_path / "store", capsys, dest, source)
    assert code == 0, err
    assert "(3 layers)" in out
    assert in_time, "no layer was in DIR while the top layer was held"
    # ... by the one request that fetched it (not one a stall watchdog gave up on)
    assert [r.status for r in proxy.requests if r.path.endswith(str(top))] == [200]
    assert tree(dest) == _stored_tree(built, tmp_path, capsys)
    assert lorry(tmp_path / "store", capsys, "fsck", "--deep")[0] == 0


def test_a_fetch_failing_after_some_layers_leaves_dir_unfinished_and_force_completes_it(
    built: BuiltImage,
    registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = _remote(built, registry, proxy, "unpack/fails")
    top = built.layer_digests[-1]
    # the top blob's first request is held until the lower layers are in DIR, then dropped;
    # the retry finds it gone
    hold = HoldRequest(HOLD)
    proxy.add(Fault(path=f"/blobs/{top}$", action=hold))
    gone = proxy.add(
        Fault(path=f"/blobs/{top}$", times=-1, action=Status(404, body=b'{"errors":[]}'))
    )
    dest = tmp_path / "rootfs"
    dest.mkdir()
    (dest / "mine.txt").write_text("the user's")
    store = tmp_path / "store"
    code, out, err, in_time = _unpack_held(
        hold,
        store,
        capsys,
        dest,
        "--force",
        source,
        more_than=1,  # mine.txt is there already
    )
    assert code != 0 and not out, out
    assert in_time, "no layer was in DIR while the top layer was held"
    assert err.count("\n") == 1 and err.startswith("lorry: error: ") and top.hex[:12] in err, err
    assert gone.hits >= 1
    assert (tmp_path / ".rootfs.lorry-incomplete").exists()
    assert (dest / "mine.txt").read_text() == "the user's"
    # without --force the unfinished DIR is refused, before anything is fetched
    code, _, err = lorry(store, capsys, "unpack", "-q", source, str(dest))
    assert code != 0 and "unfinished" in err and "--force" in err, err
    proxy.clear()
    code, out, err = lorry(store, capsys, "unpack", "-q", "--force", source, str(dest))
    assert code == 0, err
    assert not (tmp_path / ".rootfs.lorry-incomplete").exists()
    assert (dest / "mine.txt").read_text() == "the user's"
    got = tree(dest)
    del got["mine.txt"]
    assert got == _stored_tree(built, tmp_path, capsys)
