"""``lorry copy`` with a real registry on either side, checked with skopeo.

Registry → registry keeps every digest of a two-platform index (byte-equal at B); one
``--platform`` leaves one manifest at B; lorry's layout and archives go back to a registry with
skopeo under the digest lorry printed, and lorry reads what skopeo wrote.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.testing.builder import BuiltImage
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout, skopeo_copy, skopeo_inspect_raw

pytestmark = pytest.mark.integration

SKOPEO_TO_LOCAL = ["--dest-tls-verify=false"]


@pytest.fixture
def two(image_builder, registry: RegistryServer) -> tuple[BuiltImage, str]:
    built: BuiltImage = image_builder(
        layers=2, seed=4242, platforms=["linux/amd64", "linux/arm64/v8"]
    )
    return built, "docker://" + push_layout(built, registry, "copy/src", "v1").removeprefix(
        "docker://"
    )


def _copy(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert run(["copy", "-q", *args]) == 0
    return capsys.readouterr().out.strip()


def test_registry_to_registry_all_keeps_every_digest(
    two: tuple[BuiltImage, str], registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    built, src = two
    dst = f"docker://{registry.host}/copy/all:v1"
    assert _copy(capsys, "--all", src, dst) == str(built.index_digest)
    assert skopeo_inspect_raw(dst) == skopeo_inspect_raw(src) == built.index_bytes
    for child in built.children:
        raw = skopeo_inspect_raw(f"docker://{registry.host}/copy/all@{child.manifest_digest}")
        assert raw == child.manifest_bytes


def test_registry_to_registry_one_platform_holds_one_manifest(
    two: tuple[BuiltImage, str], registry: RegistryServer, capsys: pytest.CaptureFixture[str]
) -> None:
    built, src = two
    dst = f"docker://{registry.host}/copy/one:v1"
    arm = built.children[1]
    assert _copy(capsys, "--platform", "linux/arm64", src, dst) == str(arm.manifest_digest)
    assert skopeo_inspect_raw(dst) == arm.manifest_bytes


@pytest.mark.parametrize("kind", ["oci", "oci-archive"])
def test_lorry_layouts_go_back_to_a_registry_under_the_printed_digest(
    kind: str,
    two: tuple[BuiltImage, str],
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built, src = two
    where = f"{kind}:{tmp_path / ('out.tar' if kind == 'oci-archive' else 'out')}:v1"
    printed = _copy(capsys, "--all", src, where)
    back = f"docker://{registry.host}/copy/back-{kind}:v1"
    skopeo_copy(where, back, extra_args=[*SKOPEO_TO_LOCAL, "--all", "--preserve-digests"])
    assert printed == str(built.index_digest)
    assert skopeo_inspect_raw(back) == built.index_bytes


def test_a_docker_archive_from_a_registry_keeps_config_and_layers(
    two: tuple[BuiltImage, str],
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built, src = two
    archive = tmp_path / "app.tar"
    _copy(capsys, "--platform", "linux/amd64", src, f"docker-archive:{archive}:app:v1")
    back = f"docker://{registry.host}/copy/from-archive:v1"
    skopeo_copy(f"docker-archive:{archive}", back, extra_args=SKOPEO_TO_LOCAL)
    manifest = json.loads(skopeo_inspect_raw(back))
    amd = built.children[0]
    # skopeo keeps the config (so the DiffIDs) but may re-compress layers it reads from an
    # archive; lorry itself reads its archive back with the original layer blobs.
    assert manifest["config"]["digest"] == str(amd.config_digest)
    assert len(manifest["layers"]) == len(amd.layer_digests)
    again = tmp_path / "again"
    _copy(capsys, f"docker-archive:{archive}", f"oci:{again}:v1")
    blobs = {p.name for p in (again / "blobs" / "sha256").iterdir()}
    assert {d.hex for d in amd.layer_digests} <= blobs


def test_lorry_reads_a_layout_skopeo_wrote(
    two: tuple[BuiltImage, str],
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built, src = two
    theirs = f"oci:{tmp_path / 'skopeo'}:v1"
    skopeo_copy(src, theirs, extra_args=["--src-tls-verify=false", "--all", "--preserve-digests"])
    dst = f"docker://{registry.host}/copy/from-skopeo:v1"
    assert _copy(capsys, "--all", theirs, dst) == str(built.index_digest)
    assert skopeo_inspect_raw(dst) == built.index_bytes
