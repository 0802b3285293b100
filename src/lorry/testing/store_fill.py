"""Import an OCI image layout into a lorry store, for tests (pull comes in its own issue).

:func:`fill_store` reads ``index.json`` → manifest → config → layers, streams every layer
through the store's ingest (which computes the DiffID while writing the compressed blob),
checks the DiffIDs against the config's ``rootfs.diff_ids``, registers the layers bottom to
top, creates the image, records its manifest and tags it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import ChainID, Digest
from lorry.errors import IntegrityError, InvalidInputError
from lorry.reference import parse
from lorry.store import Image, Store
from lorry.store.images import diff_ids_of, parse_config

__all__ = ["fill_store"]

_CHUNK = 1 << 20


def _load(layout: Path, digest: str) -> bytes:
    d = Digest.parse(digest)
    data = (layout / "blobs" / d.algorithm / d.hex).read_bytes()
    if Digest.of(data, d.algorithm) != d:
        raise IntegrityError(f"layout {layout}: blob {d} does not match its digest")
    return data


def _top_descriptor(layout: Path) -> dict[str, Any]:
    index = json.loads((layout / "index.json").read_bytes())
    desc: dict[str, Any] = index["manifests"][0]
    return desc


def _pick_manifest(layout: Path) -> dict[str, Any]:
    desc = _top_descriptor(layout)
    while mt.is_index(desc["mediaType"]):
        nested = json.loads(_load(layout, desc["digest"]))
        desc = nested["manifests"][0]
    return desc


def _import_image(store: Store, layout: Path, desc: dict[str, Any]) -> Image:
    """Import one image manifest's layers, config and manifest bytes (caller holds the store)."""
    manifest_raw = _load(layout, desc["digest"])
    manifest = json.loads(manifest_raw)
    config_raw = _load(layout, manifest["config"]["digest"])
    want = diff_ids_of(parse_config(config_raw))
    if len(want) != len(manifest["layers"]):
        raise InvalidInputError("layers from manifest don't match image configuration")
    parent: ChainID | None = None
    for layer_desc, diff_id in zip(manifest["layers"], want, strict=True):
        blob = Digest.parse(layer_desc["digest"])
        media_type = layer_desc["mediaType"]
        path = layout / "blobs" / blob.algorithm / blob.hex
        with store.content.writer(blob, layer_desc["size"], media_type=media_type) as w:
            if not w.exists:
                with path.open("rb") as f:
                    f.seek(w.offset)
                    while chunk := f.read(_CHUNK):
                        w.write(chunk)
            w.commit()
        layer = store.layers.register(blob, parent, media_type=media_type)
        if layer.diff_id != diff_id:
            raise IntegrityError(f"layer {blob}: DiffID {layer.diff_id}, config says {diff_id}")
        parent = layer.chain_id
    config = store.content.put_bytes(config_raw, media_type=manifest["config"]["mediaType"])
    store.content.put_bytes(manifest_raw, media_type=desc["mediaType"])
    image = store.images.create(config.digest)
    store.images.add_manifest(image.id, Digest.parse(desc["digest"]), desc["mediaType"])
    return image


def fill_store(store: Store, layout: Path, reference: str, *, all_platforms: bool = False) -> Image:
    """Import the first image of the OCI layout ``layout`` and tag it ``reference``.

    With ``all_platforms`` and a layout whose tag points at an index, every child image is
    imported and the index bytes are recorded for each of them (``images.add_manifest``), as
    ``pull --all-platforms`` does; the tag and the repo digest (the index digest) point at the
    first child.
    """
    ref = parse(reference).with_default_tag()
    top = _top_descriptor(layout)
    with store.hold():
        if all_platforms and mt.is_index(top["mediaType"]):
            index_raw = _load(layout, top["digest"])
            children = json.loads(index_raw)["manifests"]
            images = [_import_image(store, layout, child) for child in children]
            store.content.put_bytes(index_raw, media_type=top["mediaType"])
            index_digest = Digest.parse(top["digest"])
            for img in images:
                store.images.add_manifest(img.id, index_digest, top["mediaType"])
            image, digest = images[0], index_digest
        else:
            desc = _pick_manifest(layout)
            image, digest = _import_image(store, layout, desc), Digest.parse(desc["digest"])
        if ref.tag:
            store.refs.add_tag(ref.name, ref.tag, image.id)
        store.refs.add_digest(ref.name, digest, image.id)
    return image
