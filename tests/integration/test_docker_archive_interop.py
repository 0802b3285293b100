"""The docker-archive transport against real peers: ``docker load``, ``docker save``, skopeo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry.oci import Manifest
from lorry.testing.builder import BuiltImage, build_image
from lorry.testing.dockerd import DockerDaemon
from lorry.testing.skopeo import run_skopeo, skopeo_copy
from lorry.transports import BlobOpener
from lorry.transports.docker_archive import DockerArchiveDestination, DockerArchiveSource

pytestmark = pytest.mark.integration


def _opener(path: Path) -> BlobOpener:
    def open_at(offset: int) -> Iterator[bytes]:
        return iter([path.read_bytes()[offset:]])

    return open_at


def _write_archive(built: BuiltImage, target: Path, ref: str | None) -> None:
    dest = DockerArchiveDestination(target, ref, f"docker-archive:{target}")
    manifest = Manifest.parse(built.manifest_bytes, built.media_type)
    for desc in (*manifest.layers, manifest.config):
        dest.put_blob(desc, _opener(built.blob_path(desc.digest)))
    dest.put_manifest(built.manifest_bytes, built.media_type, built.manifest_digest, top=True)
    dest.commit()


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_docker_load_of_our_archive(
    dockerd: DockerDaemon, tmp_path: Path, compression: str
) -> None:
    built = build_image(tmp_path / "layout", layers=2, seed=7, compression=compression)  # type: ignore[arg-type]
    ref = f"lorry-archive-{compression}:v1"
    target = tmp_path / "image.tar"
    _write_archive(built, target, ref)
    out = dockerd.docker(["load", "-i", str(target)]).decode()
    assert f"Loaded image: {ref}" in out
    layers = json.loads(
        dockerd.docker(["image", "inspect", "--format", "{{json .RootFS.Layers}}", ref])
    )
    assert layers == [str(d) for d in built.diff_ids]
    image_id = dockerd.docker(["image", "inspect", "--format", "{{.Id}}", ref]).decode().strip()
    assert image_id == str(built.config_digest)


def test_we_read_what_docker_save_writes(dockerd: DockerDaemon, tmp_path: Path) -> None:
    built = build_image(tmp_path / "layout", layers=2, seed=8)
    ref = "lorry-saved:v2"
    _write_archive(built, tmp_path / "in.tar", ref)
    dockerd.docker(["load", "-i", str(tmp_path / "in.tar")])
    saved = tmp_path / "saved.tar"
    dockerd.docker(["save", ref, "-o", str(saved)])
    image_id = dockerd.docker(["image", "inspect", "--format", "{{.Id}}", ref]).decode().strip()
    src = DockerArchiveSource(saved, ref, f"docker-archive:{saved}")
    manifest = Manifest.parse(src.get_manifest()[0])
    assert str(manifest.config.digest) == image_id
    assert len(manifest.layers) == 2
    for desc in (manifest.config, *manifest.layers):
        stream = src.open_blob(desc)
        assert sum(len(c) for c in stream) == desc.size
    # Without a ref, the only image is taken.
    assert DockerArchiveSource(saved, None, "x").get_manifest() == src.get_manifest()


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_skopeo_copies_our_archive(tmp_path: Path, compression: str) -> None:
    built = build_image(tmp_path / "layout", layers=2, seed=9, compression=compression)  # type: ignore[arg-type]
    target = tmp_path / "image.tar"
    _write_archive(built, target, "lorry-skopeo:v3")
    skopeo_copy(f"docker-archive:{target}", f"oci:{tmp_path / 'oci'}:tag")
    raw = run_skopeo(["inspect", "--raw", f"oci:{tmp_path / 'oci'}:tag"])
    manifest = Manifest.parse(raw)
    # skopeo re-serialises the config when it converts to OCI; the layers' DiffIDs stay.
    config_path = tmp_path / "oci" / "blobs" / "sha256" / manifest.config.digest.encoded
    config = json.loads(config_path.read_bytes())
    assert config["rootfs"]["diff_ids"] == [str(d) for d in built.diff_ids]
    assert len(manifest.layers) == 2
