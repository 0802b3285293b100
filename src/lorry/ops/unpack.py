"""``lorry unpack``: an image of the store applied to a directory, its DiffIDs checked on the way.

Each layer blob is read from the store, its digest checked while it streams, inflated once, its
DiffID hashed in the same pass and applied by :class:`lorry.rootfs.apply.Tree` (the safety
rules are in docs/unpack.md). The store records the answer: a match marks the layer verified,
a mismatch marks it bad and fails the unpack. Until the last layer is applied a marker beside
DIR (``.NAME.lorry-incomplete``) says the tree is not whole; the next unpack into DIR refuses
without ``--force``, which applies on top and, when it finishes, removes the marker.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lorry.digest import Digest, Hasher
from lorry.errors import IntegrityError, InvalidInputError
from lorry.rootfs.apply import Tree
from lorry.rootfs.stream import LayerReader
from lorry.store.fsutil import fsync_dir, os_error
from lorry.store.layers import Layer
from lorry.store.store import Store
from lorry.streams import compression_for

__all__ = ["UnpackResult", "incomplete_marker", "unpack_from_store", "verified_chunks"]

#: Bytes read from a blob at a time.
CHUNK = 1 << 20


@dataclass(frozen=True)
class UnpackResult:
    """What an unpack applied: the image, its layers, and warnings (skipped devices)."""

    image_id: Digest
    layers: int
    warnings: list[str]


def incomplete_marker(dest: Path) -> Path:
    """The marker beside ``dest`` that says an unpack into it has not finished."""
    return dest.parent / f".{dest.name}.lorry-incomplete"


def _prepare(dest: Path, force: bool) -> Path:
    """Check DIR may be unpacked into; create it; leave the incomplete marker beside it."""
    marker = incomplete_marker(dest)
    if dest.exists() and not dest.is_dir():
        raise InvalidInputError(f"unpack: {dest} exists and is not a directory")
    if not force:
        if marker.exists():
            raise InvalidInputError(
                f"unpack: {dest} holds an unfinished unpack; run again with --force to finish it"
            )
        if dest.is_dir() and any(dest.iterdir()):
            raise InvalidInputError(
                f"unpack: {dest} is not empty; --force applies the image on top of it"
            )
    try:
        dest.mkdir(parents=True, exist_ok=True)
        marker.touch()
        fsync_dir(dest.parent)
    except OSError as exc:
        raise os_error(exc, "preparing", dest) from exc
    return marker


def verified_chunks(store: Store, layer: Layer) -> Iterator[bytes]:
    """The layer blob's bytes; the last chunk is yielded only after size and digest matched."""
    hasher = Hasher(layer.blob_digest.algorithm)
    with store.content.open_blob(layer.blob_digest) as f:
        held = b""
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            if held:
                yield held
            held = chunk
    if hasher.size != layer.blob_size or hasher.digest() != layer.blob_digest:
        raise IntegrityError(
            f"layer blob {layer.blob_digest}: the stored bytes hash to {hasher.digest()} "
            f"({hasher.size} bytes); run 'lorry pull' again to fetch it"
        )
    if held:
        yield held


def unpack_from_store(
    store: Store,
    image_id: Digest,
    dest: Path,
    *,
    force: bool = False,
    on_layer: Callable[[Layer], None] | None = None,
) -> UnpackResult:
    """Apply the image's layers in order to ``dest``; raise on the first bad layer."""
    image = store.images.get(image_id)
    chain = store.layers.chain(image.top_layer) if image.top_layer is not None else []
    for layer in chain:
        if layer.bad_diff_id is not None:
            raise IntegrityError(
                f"layer blob {layer.blob_digest} is marked bad (its content has DiffID "
                f"{layer.bad_diff_id}, not {layer.diff_id}); nothing is unpacked from it"
            )
    marker = _prepare(dest, force)
    tree = Tree(os.fspath(dest))
    with store.hold():
        for layer in chain:
            what = f"layer {layer.blob_digest}"
            compression = compression_for(layer.media_type)
            if compression is None:
                raise InvalidInputError(f"{what}: media type {layer.media_type} is not a layer")
            reader = LayerReader(verified_chunks(store, layer), compression, what)
            tree.apply(reader, what)  # type: ignore[arg-type]
            found, size = reader.diff_id()
            store.layers.record_check(layer.chain_id, found, size)  # bad: raises, names both
            if on_layer is not None:
                on_layer(layer)
    tree.finish()
    try:
        marker.unlink()
        fsync_dir(dest.parent)
    except OSError as exc:
        raise os_error(exc, "finishing", dest) from exc
    return UnpackResult(image_id, len(chain), list(tree.warnings))
