"""Built images survive a round trip through skopeo and the real registry, digests intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.testing.builder import LayerSpec, build_image
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import SkopeoError, push_layout, skopeo_copy, skopeo_inspect_raw

pytestmark = pytest.mark.integration

TWO = ["linux/amd64", "linux/arm64/v8"]
VARIANTS: dict[str, dict[str, Any]] = {
    "oci-gzip": {"layers": 3},
    "oci-zstd": {"layers": 3, "compression": "zstd"},
    "oci-none": {"layers": 2, "compression": "none"},
    "docker": {"layers": 3, "media_types": "docker"},
    "oci-index": {"layers": 2, "platforms": TWO},
    "docker-list": {"layers": 2, "media_types": "docker", "platforms": TWO},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_push_then_inspect_raw_gives_the_built_bytes(
    registry: RegistryServer, image_builder: ImageBuilder, variant: str
) -> None:
    built = image_builder(**VARIANTS[variant])
    ref = push_layout(built, registry, f"builder/{variant}", tag="t1")
    assert ref == f"docker://{registry.host}/builder/{variant}:t1"
    raw = skopeo_inspect_raw(ref)
    assert Digest.of(raw) == built.top_digest
    assert raw == (built.index_bytes or built.manifest_bytes)
    assert json.loads(raw)["mediaType"] == built.top_media_type
    for child in built.children:
        by_digest = f"docker://{registry.host}/builder/{variant}@{child.manifest_digest}"
        assert skopeo_inspect_raw(by_digest) == child.manifest_bytes


def test_pull_back_into_a_layout_gives_identical_blobs(
    registry: RegistryServer, tmp_path: Path
) -> None:
    built = build_image(tmp_path / "src", layers=[LayerSpec(files=30, size=200_000)] * 3, seed=3)
    ref = push_layout(built, registry, "builder/roundtrip")
    skopeo_copy(ref, f"oci:{tmp_path / 'back'}:copy", extra_args=["--preserve-digests"])
    for digest in [built.manifest_digest, built.config_digest, *built.layer_digests]:
        back = tmp_path / "back" / "blobs" / "sha256" / digest.encoded
        assert back.read_bytes() == built.blob_path(digest).read_bytes()


def test_only_the_host_platform_when_asked(
    registry: RegistryServer, image_builder: ImageBuilder
) -> None:
    built = image_builder(**VARIANTS["oci-index"])
    ref = push_layout(built, registry, "builder/one-platform", all_platforms=False)
    raw = skopeo_inspect_raw(ref)
    assert raw == built.children[0].manifest_bytes  # linux/amd64, the host platform here
    assert json.loads(raw)["mediaType"] == mt.OCI_MANIFEST


def test_skopeo_failure_carries_its_stderr(registry: RegistryServer) -> None:
    with pytest.raises(SkopeoError, match="manifest unknown"):
        skopeo_inspect_raw(f"docker://{registry.host}/builder/absent:nope")
