"""Pull verifies blobs by digest; DiffIDs are a config's claim until a layer is inflated (issue 11).

An image whose layer matches its manifest digest but not its config's DiffID pulls in the
default mode, and then ``lorry verify`` and ``lorry fsck --deep`` fail naming the layer and both
DiffIDs (the layer marked bad); ``--verify-diffids`` fails the pull itself with nothing tagged.
A config that claims another image's DiffID for a different blob cannot borrow that layer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lorry.cli import run
from lorry.digest import Digest
from lorry.testing.builder import BuiltImage
from lorry.testing.faultproxy import FaultProxy
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout

pytestmark = pytest.mark.integration

INTEGRITY = 4
LIE = Digest.of(b"not the content of this layer")


def _lorry(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run(["--root", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def lying(image_builder: ImageBuilder, registry: RegistryServer) -> tuple[BuiltImage, str]:
    built = image_builder(layers=2, seed=1111, claimed_diff_ids={1: LIE})
    assert built.diff_ids[1] == LIE != built.content_diff_ids[1]
    return built, push_layout(built, registry, "claims/lying", "v1").removeprefix("docker://")


def test_a_lying_config_pulls_by_default_then_verify_and_deep_fsck_fail(
    lying: tuple[BuiltImage, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built, ref = lying
    root = tmp_path / "store"
    assert _lorry(root, capsys, "pull", "-q", ref)[0] == 0
    code, _, err = _lorry(root, capsys, "verify", ref)
    assert code == INTEGRITY and err.count("\n") == 1, err
    assert f"layer blob {built.layer_digests[1]}" in err
    assert str(built.content_diff_ids[1]) in err and str(LIE) in err and "marked bad" in err
    code, _, err = _lorry(root, capsys, "fsck", "--deep")
    assert code == INTEGRITY and str(built.layer_digests[1]) in err, err
    # Nothing builds on the bad layer: pulling the image again fails the same way.
    code, _, err = _lorry(root, capsys, "pull", "-q", ref)
    assert code == INTEGRITY and "its image configuration claims" in err, err


def test_verify_diffids_fails_the_pull_and_tags_nothing(
    lying: tuple[BuiltImage, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built, ref = lying
    root = tmp_path / "store"
    code, _, err = _lorry(root, capsys, "pull", "-q", "--verify-diffids", ref)
    assert code == INTEGRITY and str(LIE) in err and str(built.content_diff_ids[1]) in err, err
    assert _lorry(root, capsys, "images", "-q")[1] == ""


def test_an_honest_image_verifies_and_deep_fsck_is_clean(
    image_builder: ImageBuilder,
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built = image_builder(layers=3, seed=1112)
    ref = push_layout(built, registry, "claims/honest", "v1").removeprefix("docker://")
    root = tmp_path / "store"
    assert _lorry(root, capsys, "pull", "-q", ref)[0] == 0
    code, out, err = _lorry(root, capsys, "verify", ref)
    assert code == 0 and f"verified {built.config_digest} (3 layers)" in out, err
    assert _lorry(root, capsys, "fsck", "--deep")[0] == 0
    sizes = _lorry(root, capsys, "images", "--format", "{{.Size}}", ref)[1]
    assert sizes.strip().endswith("B")


def test_a_config_claiming_anothers_diffid_cannot_borrow_its_layer(
    image_builder: ImageBuilder,
    registry: RegistryServer,
    proxy: FaultProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    honest = image_builder(layers=1, seed=1113)
    thief = image_builder(layers=1, seed=1114, claimed_diff_ids={0: honest.content_diff_ids[0]})
    assert thief.layer_digests[0] != honest.layer_digests[0]
    push_layout(honest, registry, "claims/honest-one", "v1")
    push_layout(thief, registry, "claims/thief", "v1")
    root = tmp_path / "store"
    assert _lorry(root, capsys, "pull", "-q", f"{proxy.host}/claims/honest-one:v1")[0] == 0
    code, _, err = _lorry(root, capsys, "pull", "-q", f"{proxy.host}/claims/thief:v1")
    fetched = [
        r
        for r in proxy.requests
        if r.method == "GET" and r.path.endswith(str(thief.layer_digests[0]))
    ]
    assert fetched, "the thief's own blob is fetched, not taken as the honest layer"
    assert code == INTEGRITY and str(thief.layer_digests[0]) in err, err
    assert _lorry(root, capsys, "images", "--format", "{{.Repository}}")[1].split() == [
        f"{proxy.host}/claims/honest-one"
    ]
    code, _, err = _lorry(root, capsys, "verify", f"{proxy.host}/claims/honest-one:v1")
    assert code == 0, err
