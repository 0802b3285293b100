"""``lorry copy`` platform choice: host by default, one, a rewritten subset, or the whole index."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.digest import Digest
from lorry.testing.builder import BuiltImage, build_image

PLATFORMS = ["linux/amd64", "linux/arm64/v8", "linux/ppc64le"]


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> BuiltImage:
    return build_image(
        tmp_path_factory.mktemp("src") / "l", layers=1, platforms=PLATFORMS, tag="v1"
    )


def _top(layout: Path) -> tuple[bytes, Digest]:
    index = json.loads((layout / "index.json").read_bytes())
    (entry,) = index["manifests"]
    digest = Digest.parse(entry["digest"])
    return (layout / "blobs" / "sha256" / digest.hex).read_bytes(), digest


def _copy(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = run(["copy", "--progress", "plain", *args])
    got = capsys.readouterr()
    return rc, got.out.strip(), got.err


def test_all_keeps_the_index_bytes(
    three: BuiltImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, out, _ = _copy(capsys, "--all", f"oci:{three.layout}:v1", f"oci:{tmp_path / 'd'}:v1")
    assert rc == 0 and out == str(three.index_digest)
    raw, digest = _top(tmp_path / "d")
    assert digest == three.index_digest and raw == three.index_bytes


def test_one_platform_copies_that_manifest_alone(
    three: BuiltImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--platform", "linux/ppc64le", f"oci:{three.layout}:v1", f"oci:{tmp_path / 'd'}:v1"]
    rc, out, _ = _copy(capsys, *args)
    assert rc == 0 and out == str(three.children[2].manifest_digest)
    _, digest = _top(tmp_path / "d")
    assert digest == three.children[2].manifest_digest


def test_a_subset_rewrites_the_index_and_says_so(
    three: BuiltImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = f"oci:{tmp_path / 'd'}:v1"
    src = f"oci:{three.layout}:v1"
    rc, out, err = _copy(
        capsys, "--platform", "linux/amd64", "--platform", "linux/ppc64le", src, dest
    )
    assert rc == 0
    raw, digest = _top(tmp_path / "d")
    assert out == str(digest) != str(three.index_digest)
    assert f"Rewrote index of 2 platforms: {digest}" in err
    kept = [m["digest"] for m in json.loads(raw)["manifests"]]
    assert kept == [str(three.children[0].manifest_digest), str(three.children[2].manifest_digest)]


def test_preserve_digests_refuses_a_subset_before_any_blob(
    three: BuiltImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = f"oci:{three.layout}:v1"
    args = ["--preserve-digests", "--platform", "linux/amd64", "--platform", "linux/ppc64le"]
    rc, _, err = _copy(capsys, *args, src, f"oci:{tmp_path / 'd'}:v1")
    assert rc == 7 and "--preserve-digests" in err and err.count("\n") == 1
    assert not list((tmp_path / "d").glob("blobs/sha256/*"))


def test_umoci_unpacks_the_layout_lorry_wrote(
    three: BuiltImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    umoci = shutil.which("umoci")
    assert umoci is not None, "umoci is installed by scripts/test"
    out = tmp_path / "layout"
    rc, _, _ = _copy(capsys, "--platform", "linux/amd64", f"oci:{three.layout}:v1", f"oci:{out}:v1")
    assert rc == 0
    bundle = tmp_path / "bundle"
    done = subprocess.run(
        [umoci, "unpack", "--rootless", "--image", f"{out}:v1", str(bundle)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert (bundle / "config.json").is_file() and (bundle / "rootfs").is_dir()
    assert any((bundle / "rootfs").iterdir())
