"""Images pushed by skopeo pull correctly: schema2, OCI, index + platforms, zstd, plain tar.

Each test checks what ``lorry inspect`` shows (RootFS layers = the built DiffIDs, RepoTags,
RepoDigests) and that fsck finds the store sound.
"""

from __future__ import annotations

import pytest
from pull_helpers import inspect, pull, push

from lorry import mediatypes as mt
from lorry.errors import NotFoundError
from lorry.progress import CollectingSink
from lorry.store import Store
from lorry.store.fsck import fsck
from lorry.testing.builder import BuiltImage
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer

pytestmark = pytest.mark.integration


def check_pulled(store: Store, ref: str, built: BuiltImage, top: str | None = None) -> None:
    result = pull(store, ref)
    assert result.image_id == built.config_digest
    assert str(result.manifest_digest) == (top or str(built.manifest_digest))
    doc = inspect(store, result)
    assert doc["RootFS"]["Layers"] == [str(d) for d in built.diff_ids]
    name, _, _ = ref.rpartition(":")
    assert doc["RepoTags"] == [ref]
    assert doc["RepoDigests"] == [f"{name}@{result.manifest_digest}"]
    assert fsck(store).ok
    assert (built.manifest_digest, built.media_type) in store.images.manifests(result.image_id)


@pytest.mark.parametrize(
    ("media_types", "compression"),
    [("docker", "gzip"), ("oci", "gzip"), ("oci", "zstd"), ("oci", "none")],
)
def test_single_image(
    store: Store,
    registry: RegistryServer,
    image_builder: ImageBuilder,
    media_types: str,
    compression: str,
) -> None:
    built = image_builder(layers=3, seed=11, media_types=media_types, compression=compression)
    check_pulled(store, push(built, registry), built)
    layers = store.layers.chain(store.images.get(built.config_digest).top_layer)  # type: ignore[arg-type]
    assert [x.blob_digest for x in layers] == built.layer_digests
    assert {x.media_type for x in layers} == {built.layer_media_type}


def test_second_pull_is_up_to_date_and_shared_layers_already_exist(
    store: Store, registry: RegistryServer, image_builder: ImageBuilder
) -> None:
    small = image_builder(layers=2, seed=12)
    big = image_builder(layers=3, seed=12)  # same seed: shares the two bottom layers
    assert big.layer_digests[:2] == small.layer_digests
    ref_small, ref_big = push(small, registry), push(big, registry)
    first = pull(store, ref_small)
    sink = CollectingSink()
    again = pull(store, ref_small, sink=sink)
    assert (again.image_id, again.updated, first.updated) == (first.image_id, False, True)
    assert sink.events[-1].status == f"Status: Image is up to date for {ref_small}"
    sink = CollectingSink()
    pull(store, ref_big, sink=sink)
    short = [d.short for d in big.layer_digests]
    assert sink.statuses(short[0]) == ["Already exists"]
    assert sink.statuses(short[1]) == ["Already exists"]
    assert sink.statuses(short[2])[0] == "Pulling fs layer"
    assert sink.statuses(short[2])[-1] == "Pull complete"
    assert sink.events[-1].status == f"Status: Downloaded newer image for {ref_big}"


def test_index_platforms(
    store: Store, registry: RegistryServer, image_builder: ImageBuilder
) -> None:
    built = image_builder(layers=2, seed=13, platforms=["linux/amd64", "linux/arm64"])
    ref = push(built, registry)
    amd, arm = built.children
    top = str(built.index_digest)
    check_pulled(store, ref, amd, top)  # the host (amd64) by default
    arm_result = pull(store, ref, platform="linux/arm64")
    assert arm_result.image_id == arm.config_digest
    assert inspect(store, arm_result)["RootFS"]["Layers"] == [str(d) for d in arm.diff_ids]
    assert store.refs.get(ref.rpartition(":")[0], tag="latest").image_id == arm.config_digest  # type: ignore[union-attr]
    amd_result = pull(store, ref, platform="linux/amd64")
    assert (amd_result.image_id, amd_result.updated) == (amd.config_digest, True)
    with pytest.raises(NotFoundError, match=r"^no matching manifest for linux/s390x in the"):
        pull(store, ref, platform="linux/s390x")
    assert fsck(store).ok


def test_index_all_platforms(
    store: Store, registry: RegistryServer, image_builder: ImageBuilder
) -> None:
    built = image_builder(layers=2, seed=14, platforms=["linux/arm64", "linux/amd64"])
    ref = push(built, registry)
    result = pull(store, ref, all_platforms=True)
    arm, amd = built.children
    assert [i.image_id for i in result.images] == [arm.config_digest, amd.config_digest]
    assert result.image_id == amd.config_digest  # the tag points at the host's image
    index = (built.index_digest, built.index_media_type)
    for child in built.children:  # the index is found from every image, the tag's included
        assert index in store.images.manifests(child.config_digest)
    assert store.content.read_bytes(built.index_digest) == built.index_bytes  # type: ignore[arg-type]
    assert mt.is_index(store.content.info(built.index_digest).media_type or "")  # type: ignore[arg-type]


def test_pull_by_digest(
    store: Store, registry: RegistryServer, image_builder: ImageBuilder
) -> None:
    built = image_builder(layers=1, seed=15)
    ref = push(built, registry)
    name = ref.rpartition(":")[0]
    result = pull(store, f"{name}@{built.manifest_digest}")
    assert (result.image_id, result.updated) == (built.config_digest, True)
    assert store.refs.get(name, tag="latest") is None
    assert inspect(store, result)["RepoDigests"] == [f"{name}@{built.manifest_digest}"]
    assert not pull(store, f"{name}@{built.manifest_digest}").updated


def test_unknown_tag_and_repository(store: Store, registry: RegistryServer) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        pull(store, f"{registry.host}/pull/never-pushed:v1")
