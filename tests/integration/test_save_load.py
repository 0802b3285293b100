"""``lorry save`` / ``lorry load`` and ``lorry:`` copies: the store through the one copy engine.

Real peers: a real ``docker load`` of what lorry saved shows the same RootFS.Layers, and lorry
loads what ``docker save`` wrote. Bad archives fail with one line and leave the store as it was.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.store import Store
from lorry.testing.builder import BuiltImage, build_image
from lorry.testing.dockerd import DockerDaemon

pytestmark = pytest.mark.integration


@pytest.fixture
def stored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, BuiltImage]:
    """A store holding app:v1 and other:v2, copied in from built layouts with lorry copy."""
    root = tmp_path / "root"
    one = build_image(tmp_path / "one", layers=2, seed=11, tag="v1")
    two = build_image(tmp_path / "two", layers=1, seed=12, tag="v2", media_types="docker")
    assert run(["--root", str(root), "copy", "-q", f"oci:{one.layout}:v1", "lorry:app:v1"]) == 0
    assert run(["--root", str(root), "copy", "-q", f"oci:{two.layout}:v2", "lorry:other:v2"]) == 0
    capsys.readouterr()
    return root, one


def _config(image: BuiltImage) -> dict[str, object]:
    return json.loads(image.config_bytes)


def test_save_then_docker_load_shows_the_same_rootfs(
    stored: tuple[Path, BuiltImage], tmp_path: Path, dockerd: DockerDaemon
) -> None:
    root, one = stored
    out = tmp_path / "saved.tar"
    assert run(["--root", str(root), "save", "app:v1", "other:v2", "-o", str(out)]) == 0
    loaded = dockerd.docker(["load", "-i", str(out)]).decode()
    assert "app:v1" in loaded and "other:v2" in loaded
    layers = json.loads(
        dockerd.docker(["image", "inspect", "--format", "{{json .RootFS.Layers}}", "app:v1"])
    )
    assert layers == _config(one)["rootfs"]["diff_ids"]  # type: ignore[index]
    image_id = dockerd.docker(["image", "inspect", "--format", "{{.Id}}", "app:v1"]).decode()
    assert image_id.strip() == str(one.config_digest)


def test_load_of_docker_save_output_and_loaded_lines(
    stored: tuple[Path, BuiltImage],
    tmp_path: Path,
    dockerd: DockerDaemon,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, one = stored
    out = tmp_path / "saved.tar"
    assert run(["--root", str(root), "save", "app:v1", "-o", str(out)]) == 0
    dockerd.docker(["load", "-i", str(out)])
    dockerd.docker(["tag", "app:v1", "again:v9"])
    theirs = tmp_path / "docker-saved.tar"
    dockerd.docker(["save", "-o", str(theirs), "again:v9"])
    fresh = tmp_path / "fresh"
    capsys.readouterr()
    assert run(["--root", str(fresh), "load", "-i", str(theirs)]) == 0
    assert capsys.readouterr().out == "Loaded image: again:v9\n"
    with Store.open(fresh) as store:
        ref = store.refs.get("docker.io/library/again", tag="v9")
        assert ref is not None and ref.image_id == one.config_digest


def test_save_to_stdout_and_load_from_stdin_round_trip(
    tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    root = tmp_path / "root"
    one = build_image(tmp_path / "one", layers=2, seed=11, tag="v1")
    assert run(["--root", str(root), "copy", "-q", f"oci:{one.layout}:v1", "lorry:app:v1"]) == 0
    capfdbinary.readouterr()
    assert run(["--root", str(root), "save", "app:v1", "-o", "-"]) == 0
    data = capfdbinary.readouterr().out
    archive = tmp_path / "stdout.tar"
    archive.write_bytes(data)
    with tarfile.open(archive) as tar:  # stdout carried the archive and nothing else
        assert "manifest.json" in tar.getnames()
    fresh = tmp_path / "fresh"
    assert run(["--root", str(fresh), "load", "-i", str(archive)]) == 0
    with Store.open(fresh) as store:
        ref = store.refs.get("docker.io/library/app", tag="v1")
        assert ref is not None and ref.image_id == one.config_digest


def test_a_store_image_copied_out_keeps_its_manifest_digest(
    stored: tuple[Path, BuiltImage], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, one = stored
    out = tmp_path / "back"
    assert run(["--root", str(root), "copy", "lorry:app:v1", f"oci:{out}:v1"]) == 0
    assert capsys.readouterr().out.strip() == str(one.manifest_digest)


def test_a_bad_archive_is_one_line_and_the_store_is_unchanged(
    stored: tuple[Path, BuiltImage], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = stored
    good = tmp_path / "good.tar"
    assert run(["--root", str(root), "save", "app:v1", "-o", str(good)]) == 0
    with tarfile.open(good) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    manifest[0]["Layers"][0] = "blobs/sha256/" + "0" * 64
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with Store.open(root) as store:
        before = sorted(str(r) for r in store.refs.all())
    capsys.readouterr()
    assert run(["--root", str(root), "load", "-i", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "does not hold" in err and err.count("\n") == 1
    with Store.open(root) as store:
        assert sorted(str(r) for r in store.refs.all()) == before
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(good.read_bytes()[:3000])
    assert run(["--root", str(root), "load", "-i", str(truncated)]) != 0
    err = capsys.readouterr().err
    assert str(truncated) in err and err.count("\n") == 1
