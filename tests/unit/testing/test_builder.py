"""The deterministic image builder: determinism, DiffIDs, tar contents, indexes, media types."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError, UnsupportedError
from lorry.testing.builder import (
    REF_NAME,
    BuiltImage,
    LayerSpec,
    build_image,
    large_image_spec,
    many_small_image_spec,
)

SMALL = [LayerSpec(files=12, size=20_000), LayerSpec(files=8, size=10_000)]


def _blob_files(layout: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (layout / "blobs" / "sha256").iterdir()}


def _uncompressed(image: BuiltImage, i: int) -> bytes:
    data = image.blob_path(image.layer_digests[i]).read_bytes()
    kind = mt.compression_of(image.layer_media_type)
    if kind == "gzip":
        return gzip.decompress(data)
    if kind == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


def _members(image: BuiltImage, i: int) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(_uncompressed(image, i))) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    a = build_image(tmp_path / "a", layers=SMALL, seed=7)
    b = build_image(tmp_path / "b", layers=SMALL, seed=7)
    assert a.manifest_digest == b.manifest_digest
    assert a.layer_digests == b.layer_digests
    assert _blob_files(a.layout) == _blob_files(b.layout)
    assert (a.layout / "index.json").read_bytes() == (b.layout / "index.json").read_bytes()


def test_different_seed_gives_different_layers(tmp_path: Path) -> None:
    a = build_image(tmp_path / "a", layers=SMALL, seed=1)
    b = build_image(tmp_path / "b", layers=SMALL, seed=2)
    assert a.manifest_digest != b.manifest_digest
    assert not set(a.layer_digests) & set(b.layer_digests)
    assert not set(a.diff_ids) & set(b.diff_ids)


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_digests_and_diff_ids_match_the_bytes(tmp_path: Path, compression: str) -> None:
    image = build_image(tmp_path, layers=SMALL, compression=compression)  # type: ignore[arg-type]
    assert len(image.layer_digests) == len(SMALL)
    for i, digest in enumerate(image.layer_digests):
        blob = image.blob_path(digest).read_bytes()
        assert Digest.of(blob) == digest
        assert len(blob) == image.layer_sizes[i]
        assert Digest.of(_uncompressed(image, i)) == image.diff_ids[i]
    if compression == "none":
        assert image.layer_digests == image.diff_ids
    else:
        assert image.layer_digests != image.diff_ids


def test_layer_media_types_follow_compression(tmp_path: Path) -> None:
    assert build_image(tmp_path / "g").layer_media_type == mt.OCI_LAYER_GZIP
    assert build_image(tmp_path / "z", compression="zstd").layer_media_type == mt.OCI_LAYER_ZSTD
    assert build_image(tmp_path / "n", compression="none").layer_media_type == mt.OCI_LAYER


def test_gzip_header_has_no_mtime_or_name(tmp_path: Path) -> None:
    image = build_image(tmp_path, layers=1)
    head = image.blob_path(image.layer_digests[0]).read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08"
    assert head[3] == 0  # flags: no FNAME, no comment
    assert head[4:8] == b"\0\0\0\0"  # mtime


def test_manifest_config_and_layout_agree(tmp_path: Path) -> None:
    image = build_image(tmp_path, layers=SMALL, tag="v1")
    manifest = json.loads(image.manifest_bytes)
    assert manifest["mediaType"] == mt.OCI_MANIFEST == image.media_type
    assert manifest["config"] == {
        "mediaType": mt.OCI_CONFIG,
        "digest": str(image.config_digest),
        "size": len(image.config_bytes),
    }
    assert [layer["digest"] for layer in manifest["layers"]] == [
        str(d) for d in image.layer_digests
    ]
    assert [layer["size"] for layer in manifest["layers"]] == image.layer_sizes
    config = json.loads(image.config_bytes)
    assert config["rootfs"] == {"type": "layers", "diff_ids": [str(d) for d in image.diff_ids]}
    assert (config["os"], config["architecture"]) == ("linux", "amd64")
    assert len(config["history"]) == len(SMALL)
    assert config["config"]["Cmd"] and config["config"]["Env"]
    assert json.loads((tmp_path / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads((tmp_path / "index.json").read_bytes())["manifests"]
    assert entry["digest"] == str(image.manifest_digest)
    assert entry["annotations"][REF_NAME] == "v1"
    for digest in (image.manifest_digest, image.config_digest):
        assert Digest.of(image.blob_path(digest).read_bytes()) == digest


def test_second_tag_keeps_the_first(tmp_path: Path) -> None:
    first = build_image(tmp_path, layers=1, tag="one")
    second = build_image(tmp_path, layers=1, seed=5, tag="two")
    entries = json.loads((tmp_path / "index.json").read_bytes())["manifests"]
    by_tag = {e["annotations"][REF_NAME]: e["digest"] for e in entries}
    assert by_tag == {"one": str(first.manifest_digest), "two": str(second.manifest_digest)}


def test_layers_have_links_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    image = build_image(tmp_path, layers=3)
    bottom, upper = _members(image, 0), _members(image, 1)
    for members, top in ((bottom, "l0"), (upper, "l1")):
        assert members[top].isdir()
        assert members[f"{top}/zz-symlink"].issym()
        link = members[f"{top}/zz-hardlink"]
        assert link.islnk() and link.linkname in members
        assert all(m.mtime == members[top].mtime and m.uid == 0 for m in members.values())
    assert not [n for n in bottom if ".wh." in n]
    assert upper["l0/.wh.victim.txt"].isfile()
    assert "l0/victim.txt" in bottom
    assert upper["shared/.wh..wh..opq"].isfile()
    names = list(upper)
    assert names == sorted(names)


def test_without_extras_only_dirs_and_files(tmp_path: Path) -> None:
    image = build_image(tmp_path, layers=[LayerSpec(files=5, extras=False)] * 2)
    members = _members(image, 1)
    assert all(m.isdir() or m.isfile() for m in members.values())
    assert not [n for n in members if ".wh." in n or n.startswith("shared")]
    assert sum(1 for m in members.values() if m.isfile()) == 5


def test_size_and_random_fraction_shape_the_content(tmp_path: Path) -> None:
    size = 400_000
    text = build_image(tmp_path / "t", layers=[LayerSpec(files=10, size=size, random_fraction=0)])
    rand = build_image(tmp_path / "r", layers=[LayerSpec(files=10, size=size, random_fraction=1)])
    payload = sum(m.size for m in _members(text, 0).values() if m.name.startswith("l0/d"))
    assert size * 0.99 <= payload <= size
    assert text.layer_sizes[0] < size * 0.5
    assert rand.layer_sizes[0] > size


def test_two_platform_index(tmp_path: Path) -> None:
    image = build_image(tmp_path, layers=2, platforms=["linux/amd64", "linux/arm64/v8"])
    assert image.index_digest is not None and image.index_bytes is not None
    assert image.top_digest == image.index_digest == Digest.of(image.index_bytes)
    assert image.index_media_type == mt.OCI_INDEX
    index = json.loads(image.index_bytes)
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux", "variant": "v8"},
    ]
    amd, arm = image.children
    assert [m["digest"] for m in index["manifests"]] == [
        str(amd.manifest_digest),
        str(arm.manifest_digest),
    ]
    assert image.manifest_digest == amd.manifest_digest
    assert not set(amd.layer_digests) & set(arm.layer_digests)
    assert json.loads(arm.config_bytes)["variant"] == "v8"
    (entry,) = json.loads((tmp_path / "index.json").read_bytes())["manifests"]
    assert (entry["mediaType"], entry["digest"]) == (mt.OCI_INDEX, str(image.index_digest))
    for child in image.children:
        assert child.blob_path(child.manifest_digest).read_bytes() == child.manifest_bytes


def test_docker_media_types(tmp_path: Path) -> None:
    image = build_image(tmp_path, media_types="docker", platforms=["linux/amd64", "linux/arm"])
    assert image.index_media_type == mt.DOCKER_MANIFEST_LIST
    for child in image.children:
        manifest = json.loads(child.manifest_bytes)
        assert manifest["mediaType"] == mt.DOCKER_MANIFEST_V2 == child.media_type
        assert manifest["config"]["mediaType"] == mt.DOCKER_CONFIG
        assert {layer["mediaType"] for layer in manifest["layers"]} == {mt.DOCKER_LAYER_GZIP}
    index = json.loads(image.index_bytes or b"")
    assert {m["mediaType"] for m in index["manifests"]} == {mt.DOCKER_MANIFEST_V2}


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_docker_types_only_gzip(tmp_path: Path, compression: str) -> None:
    with pytest.raises(UnsupportedError, match=compression):
        build_image(tmp_path, media_types="docker", compression=compression)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"layers": 0}, {"platforms": []}, {"platforms": ["linux"]}, {"media_types": "rpm"}],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        build_image(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_presets_have_the_benchmark_shape() -> None:
    large = large_image_spec()
    assert len(large) == 8
    assert 1.0e9 < sum(s.size for s in large) < 1.1e9
    assert 40_000 <= sum(s.files for s in large) <= 42_000
    small = many_small_image_spec()
    assert len(small) == 40 and all(1e6 <= s.size <= 8e6 for s in small)


def test_uncompressed_stream_sha_is_streamed_sha(tmp_path: Path) -> None:
    # The tar is padded to a whole record, as GNU tar and Python's tarfile do.
    image = build_image(tmp_path, layers=1, compression="none")
    data = image.blob_path(image.layer_digests[0]).read_bytes()
    assert len(data) % tarfile.RECORDSIZE == 0
    assert hashlib.sha256(data).hexdigest() == image.diff_ids[0].hex
