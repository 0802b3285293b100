"""``lorry unpack SOURCE DIR`` from any source copy reads: the store's tree, DIR guarded (issue 12).

``oci:`` and ``docker://`` (a real registry) give the same tree as an unpack of the stored
image; ``--platform`` picks the image of an index; a source that cannot be read is one line
of error and DIR is never created.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from unpack_helpers import lorry, stored, tree

from lorry.digest import Digest
from lorry.store import Store
from lorry.testing.builder import BuiltImage
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout

pytestmark = pytest.mark.integration

NOT_FOUND, INVALID, INTEGRITY = 3, 2, 4


@pytest.fixture
def built(image_builder: ImageBuilder) -> BuiltImage:
    """Three layers with whiteouts, opaque directories and hard links (the store tests' image)."""
    image: BuiltImage = image_builder(layers=3, seed=4242)
    return image


@pytest.fixture
def from_store(
    built: BuiltImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> dict[str, tuple[object, ...]]:
    """The tree of the image unpacked from the store, as ``lorry unpack NAME DIR`` gives it."""
    root = tmp_path / "store-ref"
    ref = stored(built, root, capsys, "ref")
    code, _, err = lorry(root, capsys, "unpack", "-q", ref, str(tmp_path / "ref-rootfs"))
    assert code == 0, err
    picture = tree(tmp_path / "ref-rootfs")
    assert picture
    return picture


def test_unpack_from_an_oci_layout_is_the_stored_tree(
    built: BuiltImage,
    from_store: dict[str, tuple[object, ...]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, dest = tmp_path / "store", tmp_path / "rootfs"
    source = f"oci:{built.layout}:{built.tag}"
    code, out, err = lorry(root, capsys, "unpack", "--progress", "plain", source, str(dest))
    assert code == 0, err
    assert f"unpacked {built.config_digest} (3 layers)" in out
    for digest in built.layer_digests:  # the copy's line, then Extracting, then Pull complete
        lines = [line for line in err.splitlines() if line.startswith(f"{digest.short}: ")]
        assert lines[-2:] == [f"{digest.short}: Extracting", f"{digest.short}: Pull complete"]
        assert len(lines) > 2, err
    assert tree(dest) == from_store
    assert not list(tmp_path.glob(".rootfs.lorry-incomplete"))
    # the image stays in the store, untagged; every layer's DiffID was checked on the way
    code, out, _ = lorry(root, capsys, "images", "-q")
    assert code == 0 and out.strip(), out
    with Store.open(root) as store:  # the copy took the config's claims; the unpack checked them
        image = store.images.get(built.config_digest)
        assert image.top_layer is not None
        layers = store.layers.chain(image.top_layer)
        assert len(layers) == 3 and all(layer.verified for layer in layers)
    assert lorry(root, capsys, "fsck", "--deep")[0] == 0
    # a second unpack from the same layout fetches nothing and gives the same tree
    again = tmp_path / "again"
    assert lorry(root, capsys, "unpack", "-q", source, str(again))[0] == 0
    assert tree(again) == from_store


def test_unpack_from_a_registry_is_the_stored_tree(
    built: BuiltImage,
    from_store: dict[str, tuple[object, ...]],
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = push_layout(built, registry, "unpack/src", "v1")
    assert source.startswith("docker://")
    root, dest = tmp_path / "store", tmp_path / "rootfs"
    code, out, err = lorry(root, capsys, "unpack", "--progress", "json", source, str(dest))
    assert code == 0, err
    assert f"unpacked {built.config_digest} (3 layers)" in out
    assert err.count('"status":"Pull complete"') == 3, err
    assert tree(dest) == from_store
    code, out, _ = lorry(root, capsys, "images", "--format", "{{.Repository}}")
    assert code == 0 and "unpack/src" not in out  # an unpack tags nothing


def test_platform_picks_the_image_of_an_index(
    image_builder: ImageBuilder,
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    two: BuiltImage = image_builder(
        layers=2, seed=4242, platforms=["linux/amd64", "linux/arm64/v8"]
    )
    amd, arm = two.children
    assert amd.config_digest != arm.config_digest
    root = tmp_path / "store"
    remote = push_layout(two, registry, "unpack/multi", "v1")
    for source in (f"oci:{two.layout}:{two.tag}", remote):
        for platform, child in (("linux/arm64", arm), ("linux/amd64", amd)):
            dest = tmp_path / f"rootfs-{len(list(tmp_path.iterdir()))}"
            args = ("unpack", "-q", "--platform", platform, source, str(dest))
            code, out, err = lorry(root, capsys, *args)
            assert code == 0, err
            assert f"unpacked {child.config_digest} (2 layers)" in out, (source, platform, out)
            assert tree(dest)
    # a stored image is checked against the platform asked for, never silently the wrong one
    ref = stored(amd, root, capsys, "amd")
    code, _, err = lorry(root, capsys, "unpack", "--platform", "linux/arm64", ref, "nope")
    assert code == NOT_FOUND and err.count("\n") == 1 and "linux/amd64" in err, err
    assert not (Path.cwd() / "nope").exists()


@pytest.mark.parametrize(
    "source",
    [
        "oci:{tmp}/no-such-layout:v1",
        "oci:{layout}:no-such-tag",
        "docker-archive:{tmp}/missing.tar",
        "docker://{registry}/unpack/never-pushed:v1",
        "dir:{tmp}/x",
    ],
)
def test_a_bad_source_is_one_line_and_leaves_dir_absent(
    source: str,
    built: BuiltImage,
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = source.format(tmp=tmp_path, layout=built.layout, registry=registry.host)
    dest = tmp_path / "rootfs"
    code, out, err = lorry(tmp_path / "store", capsys, "unpack", text, str(dest))
    assert code != 0 and not out, out
    assert err.count("\n") == 1 and err.startswith("lorry: error: "), err
    named = text.split(":", 1)[1].split(":")[0].removeprefix("//")
    assert named in err or "no-such-tag" in err or "dir" in err, err
    assert not dest.exists()
    assert not list(tmp_path.glob(".rootfs.lorry-incomplete"))


def test_a_refused_dir_is_refused_before_the_source_is_read(
    built: BuiltImage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    root = tmp_path / "store"
    source = f"oci:{built.layout}:{built.tag}"
    code, _, err = lorry(root, capsys, "unpack", source, str(dest))
    assert code == INVALID and str(dest) in err and "--force" in err, err
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    assert not root.exists() or lorry(root, capsys, "images", "-q")[1].strip() == ""


def test_a_lying_layer_from_a_layout_fails_the_unpack_and_is_marked_bad(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lie = Digest.of(b"not the content of this layer")
    built = image_builder(layers=3, seed=1111, claimed_diff_ids={1: lie})
    root, dest = tmp_path / "store", tmp_path / "rootfs"
    source = f"oci:{built.layout}:{built.tag}"
    code, out, err = lorry(root, capsys, "unpack", "-q", source, str(dest))
    assert code == INTEGRITY and not out and err.count("\n") == 1, err
    assert str(built.layer_digests[1]) in err and str(lie) in err and "marked bad" in err, err
    assert (tmp_path / ".rootfs.lorry-incomplete").exists()  # never looks like a good tree
    # the layer is known bad now: a second try applies nothing from it, whatever --force says
    code, _, err = lorry(root, capsys, "unpack", "-q", "--force", source, str(dest))
    assert code == INTEGRITY and "marked bad" in err, err
    assert (tmp_path / ".rootfs.lorry-incomplete").exists()
