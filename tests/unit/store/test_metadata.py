"""Layers, images, references, distribution metadata, rmi and prune on a real temporary store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest, chain_ids
from lorry.errors import IntegrityError, InvalidInputError, NotFoundError, StoreError
from lorry.store import Store
from lorry.store.fsck import fsck
from lorry.store.gc import prune
from lorry.store.locks import FileLock
from lorry.store.remove import remove_image, remove_reference
from lorry.store.root import FORMAT_FILE

# xfer-spec §2.6 test vector: tars "id1"*5 and "id2"*5.
TARS = [b"id1" * 5, b"id2" * 5, b"id3" * 5]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "root") as s:
        yield s


def _layers(store: Store, tars: list[bytes]) -> list[Digest]:
    parent = None
    out = []
    for tar in tars:
        info = store.content.put_bytes(tar, media_type=mt.OCI_LAYER)
        layer = store.layers.register(info.digest, parent, media_type=mt.OCI_LAYER)
        parent = layer.chain_id
        out.append(layer.chain_id)
    return out


def _image(store: Store, tars: list[bytes], label: str = "") -> Digest:
    _layers(store, tars)
    config = {"rootfs": {"type": "layers", "diff_ids": [str(Digest.of(t)) for t in tars]}}
    config["config"] = {"Labels": {"l": label}}
    return store.images.create(store.content.put_bytes(json.dumps(config).encode()).digest).id


def test_chain_ids_match_the_spec_vector(store: Store) -> None:
    chains = _layers(store, TARS[:2])
    assert (
        str(chains[0]) == "sha256:68e2c75dc5c78ea9240689c60d7599766c213ae210434c53af18470ae8c53ec1"
    )
    assert (
        str(chains[1]) == "sha256:512cdd6c83f5a85fc0f18c0e30c41a01d43402ed55ca4c9eebe2a780abcf8298"
    )
    assert chains == chain_ids(Digest.of(t) for t in TARS[:2])


def test_register_is_idempotent_and_counts_children(store: Store) -> None:
    chains = _layers(store, TARS)
    again = _layers(store, TARS)
    assert chains == again
    assert [store.layers.get(c).refcount for c in chains] == [1, 1, 0]
    assert [layer.chain_id for layer in store.layers.chain(chains[2])] == chains


def test_register_needs_parent_and_blob(store: Store) -> None:
    info = store.content.put_bytes(TARS[0], media_type=mt.OCI_LAYER)
    with pytest.raises(NotFoundError):
        store.layers.register(info.digest, Digest.of(b"nope"), media_type=mt.OCI_LAYER)
    with pytest.raises(NotFoundError):
        store.layers.register(Digest.of(b"absent"), None, media_type=mt.OCI_LAYER)


def test_image_needs_its_layers(store: Store) -> None:
    config = {"rootfs": {"type": "layers", "diff_ids": [str(Digest.of(b"x"))]}}
    digest = store.content.put_bytes(json.dumps(config).encode()).digest
    with pytest.raises(NotFoundError):
        store.images.create(digest)
    bad = store.content.put_bytes(b'{"rootfs": 1}').digest
    with pytest.raises(InvalidInputError):
        store.images.create(bad)


def test_references(store: Store) -> None:
    a, b = _image(store, TARS[:1], "a"), _image(store, TARS[:1], "b")
    assert store.refs.add_tag("docker.io/library/x", "1", a)
    assert not store.refs.add_tag("docker.io/library/x", "1", a)
    with pytest.raises(InvalidInputError):
        store.refs.add_tag("docker.io/library/x", "1", b, force=False)
    assert store.refs.add_tag("docker.io/library/x", "1", b)
    digest = Digest.of(b"manifest")
    store.refs.add_digest("docker.io/library/x", digest, a)
    with pytest.raises(InvalidInputError):  # a digest names exactly one image
        store.refs.add_digest("docker.io/library/x", digest, b)
    with pytest.raises(NotFoundError):
        store.refs.add_tag("docker.io/library/x", "2", Digest.of(b"no image"))
    assert [str(r) for r in store.refs.for_image(b)] == ["docker.io/library/x:1"]


def test_distmeta_only_for_locally_verified_pairs(store: Store) -> None:
    info = store.content.put_bytes(TARS[0], media_type=mt.OCI_LAYER)
    diff = Digest.of(TARS[0])
    with pytest.raises(IntegrityError):
        store.distmeta.record(Digest.of(b"claimed"), info.digest, "r.example", "a/b")
    store.distmeta.record(diff, info.digest, "r.example", "a/b")
    store.distmeta.record(diff, info.digest, "other.example", "c")
    assert [r.registry for r in store.distmeta.for_diff_id(diff, "r.example")] == ["r.example"]
    assert len(store.distmeta.for_diff_id(diff)) == 2
    assert store.distmeta.diff_id_of(info.digest) == diff
    assert store.distmeta.forget(info.digest, "r.example", "a/b") == 1


def test_rmi_refuses_while_a_child_image_needs_it(store: Store) -> None:
    base = _image(store, TARS[:1], "base")
    child = _image(store, TARS[:2], "child")
    store.refs.add_tag("docker.io/library/base", "1", base)
    store.refs.add_tag("docker.io/library/child", "1", child)
    with pytest.raises(InvalidInputError, match="need it"):
        remove_image(store, base)
    assert remove_image(store, base, force=True).deleted == [base]
    ref = store.refs.get("docker.io/library/child", tag="1")
    assert ref is not None
    assert remove_reference(store, ref).deleted == [child]
    report = prune(store)
    assert len(report.layers) == 2 and report.freed > 0
    assert fsck(store).ok and not store.layers.all()


def test_prune_keeps_live_ingests_and_drops_stale_ones(store: Store) -> None:
    live, stale = Digest.of(b"live data"), Digest.of(b"stale data")
    with store.content.writer(stale) as w:
        w.write(b"stale")
    writer = store.content.writer(live)
    writer.write(b"live")
    try:
        report = prune(store)
    finally:
        writer.close()
    assert report.ingests == [stale] and report.freed == 5
    assert store.layout.ingest_data(live).exists()


def test_prune_waits_for_holders(store: Store) -> None:
    seen: list[bool] = []

    def on_wait() -> None:
        seen.append(True)
        raise StoreError("gave up waiting")

    with store.hold(), pytest.raises(StoreError, match="gave up"):
        prune(store, on_wait=on_wait)
    assert seen


def test_lock_follows_a_replaced_file(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = FileLock(path)
    holder.acquire()
    other = FileLock(path)
    assert not other.acquire(blocking=False)
    holder.release(unlink=True)
    assert other.acquire(blocking=False)
    assert path.exists()
    other.release()


def test_newer_format_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    (tmp_path / FORMAT_FILE).write_text('{"format": 99}')
    with pytest.raises(StoreError, match="upgrade lorry"):
        Store.open(tmp_path)
