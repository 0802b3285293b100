"""Push against the real registry: digests kept, re-push skips, sibling repositories mount."""

from __future__ import annotations

from pathlib import Path

import pytest
from push_helpers import layer_statuses, messages

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError, NotFoundError
from lorry.oci import Manifest
from lorry.store import Store
from lorry.testing.faultproxy import FaultProxy
from lorry.testing.skopeo import skopeo_copy, skopeo_inspect_raw
from lorry.testing.store_fill import fill_store

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("media_types", ["oci", "docker"])
def test_push_sends_the_recorded_manifest_bytes(
    registry, image_builder, store: Store, do_push, tmp_path: Path, media_types: str
) -> None:
    built = image_builder(layers=3, seed=701, media_types=media_types)
    name = f"{registry.host}/push/keep-{media_types}:v1"
    image = fill_store(store, built.layout, name)
    result, sink = do_push(name)
    assert result.manifest_digest == built.manifest_digest
    assert result.size == len(built.manifest_bytes)
    assert str(result.reference) == name
    assert skopeo_inspect_raw(f"docker://{name}") == built.manifest_bytes
    skopeo_copy(f"docker://{name}", f"oci:{tmp_path / 'copy'}:v1")
    ids = [d.short for d in reversed(built.diff_ids)]
    assert [e.id for e in sink.events if e.status == "Preparing"] == ids  # top→bottom
    assert layer_statuses(sink) == dict.fromkeys(ids, "Pushed")
    assert messages(sink) == [
        f"The push refers to repository [{registry.host}/push/keep-{media_types}]",
        f"v1: digest: {built.manifest_digest} size: {len(built.manifest_bytes)}",
    ]
    assert sink.events[-1].aux == {
        "Tag": "v1",
        "Digest": str(built.manifest_digest),
        "Size": len(built.manifest_bytes),
    }
    for diff, blob in zip(built.diff_ids, built.layer_digests, strict=True):
        where = store.distmeta.for_diff_id(diff, registry.host)
        assert (blob, f"push/keep-{media_types}") in [(r.blob_digest, r.repository) for r in where]
    ref = store.refs.get(f"{registry.host}/push/keep-{media_types}", digest=result.manifest_digest)
    assert ref is not None and ref.image_id == image.id


def test_repush_uploads_nothing_and_mounts_into_a_sibling(
    registry, proxy: FaultProxy, image_builder, store: Store, do_push
) -> None:
    built = image_builder(layers=3, seed=702)
    fill_store(store, built.layout, f"{proxy.host}/push/first:v1")
    ids = [d.short for d in built.diff_ids]
    do_push(f"{proxy.host}/push/first:v1")
    first_bytes = proxy.blob_bytes_received
    assert first_bytes >= sum(built.layer_sizes)

    result, sink = do_push(f"{proxy.host}/push/first:v1")
    assert proxy.blob_bytes_received == first_bytes  # zero layer bytes the second time
    assert layer_statuses(sink) == dict.fromkeys(ids, "Layer already exists")
    assert result.manifest_digest == built.manifest_digest

    result, sink = do_push(f"{proxy.host}/push/first:v1", f"{proxy.host}/push/second")
    assert proxy.blob_bytes_received == first_bytes
    assert layer_statuses(sink) == dict.fromkeys(ids, "Mounted from push/first")
    assert str(result.reference) == f"{proxy.host}/push/second:v1"  # the source's tag
    mounts = [r for r in proxy.requests if r.method == "POST" and "mount=" in r.query]
    assert len(mounts) == 4 and all(r.status == 201 for r in mounts)  # layers + config
    assert skopeo_inspect_raw(f"docker://{registry.host}/push/second:v1") == built.manifest_bytes


def test_stale_metadata_for_the_target_is_forgotten(
    registry, image_builder, store: Store, do_push, registry_factory
) -> None:
    built = image_builder(layers=1, seed=703)
    other = registry_factory()
    fill_store(store, built.layout, f"{other.host}/push/stale:v1")
    do_push(f"{other.host}/push/stale:v1")
    fresh = registry_factory()  # same name, new storage: the metadata now lies
    store.distmeta.record(built.diff_ids[0], built.layer_digests[0], fresh.host, "push/stale")
    _, sink = do_push(f"{other.host}/push/stale:v1", f"{fresh.host}/push/stale:v1")
    assert layer_statuses(sink) == {built.diff_ids[0].short: "Pushed"}
    rows = store.distmeta.for_diff_id(built.diff_ids[0], fresh.host)
    assert [r.repository for r in rows] == ["push/stale"]  # re-recorded after the upload


def test_image_without_a_recorded_manifest_gets_a_deterministic_one(
    registry, image_builder, store: Store, do_push
) -> None:
    built = image_builder(layers=2, seed=704)
    with store.hold():
        parent = None
        for blob, size in zip(built.layer_digests, built.layer_sizes, strict=True):
            with store.content.writer(blob, size, media_type=mt.OCI_LAYER_GZIP) as w:
                w.write(built.blob_path(blob).read_bytes())
                w.commit()
            parent = store.layers.register(blob, parent, media_type=mt.OCI_LAYER_GZIP).chain_id
        store.content.put_bytes(built.config_bytes, media_type=mt.OCI_CONFIG)
        image = store.images.create(built.config_digest)
        store.refs.add_tag(f"{registry.host}/push/built", "v1", image.id)
    first, _ = do_push(f"{registry.host}/push/built:v1")
    raw = skopeo_inspect_raw(f"docker://{registry.host}/push/built:v1")
    assert Digest.of(raw) == first.manifest_digest
    manifest = Manifest.parse(raw)
    assert [d.digest for d in manifest.layers] == built.layer_digests
    assert manifest.config.digest == built.config_digest
    assert store.images.manifests(image.id) == [(first.manifest_digest, mt.OCI_MANIFEST)]
    again, _ = do_push(f"{registry.host}/push/built:v1", f"{registry.host}/push/built2:v1")
    assert again.manifest_digest == first.manifest_digest


def test_refusals(registry, image_builder, store: Store, do_push) -> None:
    built = image_builder(layers=1, seed=705)
    name = f"{registry.host}/push/refuse"
    fill_store(store, built.layout, f"{name}:v1")
    with pytest.raises(InvalidInputError, match="cannot push a digest reference"):
        do_push(f"{name}:v1", f"{name}@{built.manifest_digest}")
    with pytest.raises(InvalidInputError, match="no registry host"):
        do_push(f"{name}:v1", "foo_bar.com/app:v1")
    with pytest.raises(NotFoundError, match="no such image"):
        do_push(f"{name}:nope")
    with pytest.raises(InvalidInputError, match="give a destination"):
        do_push(str(built.config_digest))
