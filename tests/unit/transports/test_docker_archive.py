"""The docker-archive transport: write an archive, read it back, refuse damaged archives."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, InvalidInputError, NotFoundError
from lorry.oci import Descriptor, Manifest
from lorry.testing.builder import BuiltImage, build_image
from lorry.transports import BlobOpener
from lorry.transports.docker_archive import DockerArchiveDestination, DockerArchiveSource


def _opener(path: Path) -> BlobOpener:
    def open_at(offset: int) -> Iterator[bytes]:
        data = path.read_bytes()[offset:]
        for i in range(0, len(data), 1000):
            yield data[i : i + 1000]

    return open_at


def _copy_in(dest: DockerArchiveDestination, built: BuiltImage) -> None:
    """What the copy engine does: blobs (layers, then config), then the top manifest."""
    manifest = Manifest.parse(built.manifest_bytes, built.media_type)
    for desc in (*manifest.layers, manifest.config):
        dest.put_blob(desc, _opener(built.blob_path(desc.digest)))
    dest.put_manifest(built.manifest_bytes, built.media_type, built.manifest_digest, top=True)


def _read_blob(src: DockerArchiveSource, desc: Descriptor, offset: int = 0) -> bytes:
    stream = src.open_blob(desc, offset)
    try:
        return b"".join(stream)
    finally:
        stream.close()


def _tar(path: Path, files: dict[str, bytes]) -> None:
    with tarfile.open(path, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_write_then_read_keeps_config_and_layer_digests(tmp_path: Path, compression: str) -> None:
    built = build_image(tmp_path / "layout", layers=2, compression=compression)  # type: ignore[arg-type]
    target = tmp_path / "out.tar"
    dest = DockerArchiveDestination(target, "example.com/app:v1", "docker-archive:out.tar")
    _copy_in(dest, built)
    assert not target.exists()
    dest.commit()
    assert target.is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tar")] == []

    with tarfile.open(target) as tar:
        names = set(tar.getnames())
        entries = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert {"manifest.json", "index.json", "oci-layout", "repositories"} <= names
    assert entries[0]["RepoTags"] == ["example.com/app:v1"]
    assert entries[0]["Config"] == f"blobs/sha256/{built.config_digest.encoded}"

    src = DockerArchiveSource(target, None, "docker-archive:out.tar")
    raw, media_type, digest = src.get_manifest()
    assert media_type == mt.DOCKER_MANIFEST_V2
    assert digest == Digest.of(raw)
    manifest = Manifest.parse(raw, media_type)
    assert manifest.config.digest == built.config_digest
    assert manifest.config.media_type == mt.DOCKER_CONFIG
    assert [d.digest for d in manifest.layers] == built.layer_digests
    assert [d.size for d in manifest.layers] == built.layer_sizes
    want = mt.DOCKER_LAYER_GZIP if compression == "gzip" else mt.DOCKER_LAYER_TAR
    assert {d.media_type for d in manifest.layers} == {want}
    assert src.get_manifest(digest) == (raw, media_type, digest)
    assert _read_blob(src, manifest.config) == built.config_bytes
    layer = manifest.layers[0]
    data = built.blob_path(layer.digest).read_bytes()
    assert _read_blob(src, layer) == data
    assert _read_blob(src, layer, 10) == data[10:]
    # The same archive also answers to its tag, in any spelling Docker accepts.
    assert DockerArchiveSource(target, "example.com/app:v1", "x").get_manifest()[2] == digest
    src.close()


def test_several_images_in_one_archive(tmp_path: Path) -> None:
    a = build_image(tmp_path / "a", layers=1, seed=1)
    b = build_image(tmp_path / "b", layers=2, seed=2)
    target = tmp_path / "two.tar"
    dest = DockerArchiveDestination(target, "alpha", "x")
    _copy_in(dest, a)
    dest.next_image("docker.io/library/beta:2")
    _copy_in(dest, b)
    dest.commit()
    with pytest.raises(InvalidInputError, match="2 images"):
        DockerArchiveSource(target, None, "x")
    for ref, built in (("alpha:latest", a), ("beta:2", b), ("docker.io/library/alpha", a)):
        raw, _, _ = DockerArchiveSource(target, ref, "x").get_manifest()
        assert Manifest.parse(raw).config.digest == built.config_digest
    with pytest.raises(NotFoundError, match="gamma"):
        DockerArchiveSource(target, "gamma", "x")
    src = DockerArchiveSource(target, "alpha", "x")
    assert Manifest.parse(src.get_manifest("beta:2")[0]).config.digest == b.config_digest


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    built = build_image(tmp_path / "layout", layers=1)
    target = tmp_path / "out.tar"
    dest = DockerArchiveDestination(target, None, "x")
    _copy_in(dest, built)
    dest.abort()
    dest.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["layout"]


def test_a_corrupt_blob_is_refused_and_not_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.tar"
    dest = DockerArchiveDestination(target, None, "x")
    desc = Descriptor(mt.DOCKER_LAYER_GZIP, Digest.of(b"right"), 5)
    with pytest.raises(IntegrityError):
        dest.put_blob(desc, lambda offset: iter([b"wrong"]))
    assert not dest.reuse_blob(desc)
    dest.abort()
    assert list(tmp_path.iterdir()) == []


def test_commit_without_a_manifest_is_refused(tmp_path: Path) -> None:
    dest = DockerArchiveDestination(tmp_path / "out.tar", None, "x")
    with pytest.raises(InvalidInputError):
        dest.commit()
    assert list(tmp_path.iterdir()) == []


def _old_style(tmp_path: Path, entries: list[Any], extra: dict[str, bytes]) -> Path:
    path = tmp_path / "old.tar"
    _tar(path, {"manifest.json": json.dumps(entries).encode(), **extra})
    return path


def test_reads_the_old_docker_save_layout(tmp_path: Path) -> None:
    layer = b"pretend layer tar" * 100
    config = b'{"rootfs":{"type":"layers","diff_ids":[]}}'
    chex = hashlib.sha256(config).hexdigest()
    entry = {"Config": f"{chex}.json", "RepoTags": ["app:1"], "Layers": ["abc/layer.tar"]}
    path = _old_style(tmp_path, [entry], {f"{chex}.json": config, "abc/layer.tar": layer})
    src = DockerArchiveSource(path, "app:1", "x")
    manifest = Manifest.parse(src.get_manifest()[0])
    assert manifest.config.digest.hex == chex
    assert manifest.layers[0].digest == Digest.of(layer)
    assert manifest.layers[0].media_type == mt.DOCKER_LAYER_TAR
    assert _read_blob(src, manifest.layers[0]) == layer
    with pytest.raises(NotFoundError):
        src.open_blob(Descriptor(mt.DOCKER_LAYER_TAR, Digest.of(b"other"), 5))
    with pytest.raises(NotFoundError):
        src.get_manifest(Digest.of(b"other"))


def test_follows_symlinks_of_the_docker_25_layout(tmp_path: Path) -> None:
    layer = b"layer bytes" * 50
    lhex = hashlib.sha256(layer).hexdigest()
    config = b"{}"
    chex = hashlib.sha256(config).hexdigest()
    entry = {"Config": f"blobs/sha256/{chex}", "RepoTags": [], "Layers": ["id1/layer.tar"]}
    path = tmp_path / "new.tar"
    with tarfile.open(path, mode="w") as tar:
        for name, data in {
            "manifest.json": json.dumps([entry]).encode(),
            f"blobs/sha256/{lhex}": layer,
            f"blobs/sha256/{chex}": config,
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("id1/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, f"../blobs/sha256/{lhex}"
        tar.addfile(link)
    src = DockerArchiveSource(path, None, "x")
    manifest = Manifest.parse(src.get_manifest()[0])
    assert manifest.layers[0].digest.hex == lhex
    assert _read_blob(src, manifest.layers[0]) == layer


def test_manifest_json_naming_a_missing_member(tmp_path: Path) -> None:
    entry = {"Config": "c.json", "RepoTags": [], "Layers": ["missing/layer.tar"]}
    path = _old_style(tmp_path, [entry], {"c.json": b"{}"})
    with pytest.raises(InvalidInputError) as err:
        DockerArchiveSource(path, None, "x")
    assert str(path) in str(err.value)
    assert "missing/layer.tar" in str(err.value)


def test_truncated_tar(tmp_path: Path) -> None:
    big = bytes(range(256)) * 400
    entry = {"Config": "c.json", "RepoTags": [], "Layers": ["l/layer.tar"]}
    path = _old_style(tmp_path, [entry], {"c.json": b"{}", "l/layer.tar": big})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidInputError) as err:
        DockerArchiveSource(path, None, "x")
    assert str(path) in str(err.value)


def test_not_a_tar_and_no_file(tmp_path: Path) -> None:
    path = tmp_path / "junk.tar"
    path.write_bytes(b"no tar here" * 100)
    with pytest.raises(InvalidInputError, match=r"junk\.tar"):
        DockerArchiveSource(path, None, "x")
    with pytest.raises(NotFoundError):
        DockerArchiveSource(tmp_path / "absent.tar", None, "x")


def test_ambiguous_ref(tmp_path: Path) -> None:
    files = {"c.json": b"{}", "l/layer.tar": b"x"}
    one = {"Config": "c.json", "RepoTags": ["app:latest"], "Layers": ["l/layer.tar"]}
    two = {"Config": "c.json", "RepoTags": ["docker.io/library/app"], "Layers": []}
    path = _old_style(tmp_path, [one, two], files)
    with pytest.raises(InvalidInputError, match="2 images are tagged 'app'"):
        DockerArchiveSource(path, "app", "x")
    with pytest.raises(InvalidInputError, match="2 images"):
        DockerArchiveSource(path, None, "x")
