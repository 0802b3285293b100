"""The private dockerd fixture: it answers, and a real ``docker load`` takes a docker-archive.

The archive is written by hand here (manifest.json, config, one uncompressed layer tar), so the
fixture is proven against the format the docker-archive transport will write.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from lorry.testing.dockerd import DockerDaemon

pytestmark = pytest.mark.integration


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_500_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_docker_load_of_a_hand_made_archive_shows_its_rootfs(dockerd: DockerDaemon) -> None:
    layer = _tar({"hello.txt": b"hello from lorry\n"})
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        }
    ).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    layer_path = f"{diff_id[7:]}/layer.tar"
    manifest = [
        {"Config": f"{config_hex}.json", "RepoTags": ["lorry-fixture:v1"], "Layers": [layer_path]}
    ]
    archive = _tar(
        {
            "manifest.json": json.dumps(manifest).encode(),
            f"{config_hex}.json": config,
            layer_path: layer,
        }
    )
    out = dockerd.docker(["load"], stdin=archive).decode()
    assert "Loaded image: lorry-fixture:v1" in out
    shown = json.loads(dockerd.docker(["image", "inspect", "lorry-fixture:v1"]))
    assert shown[0]["Id"] == f"sha256:{config_hex}"
    assert shown[0]["RootFS"]["Layers"] == [diff_id]
