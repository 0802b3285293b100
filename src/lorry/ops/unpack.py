"""``lorry unpack``: an image of the store applied to a directory, its DiffIDs checked on the way.

Each layer blob is read from the store, its digest checked while it streams, inflated once, its
DiffID hashed in the same pass and applied by :class:`lorry.rootfs.apply.Tree` (the safety
rules are in docs/unpack.md). The store records the answer: a match marks the layer verified,
a mismatch marks it bad and fails the unpack. Until the last layer is applied a marker beside
DIR (``.NAME.lorry-incomplete``) says the tree is not whole; the next unpack into DIR refuses
without ``--force``, which applies on top and, when it finishes, removes the marker.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lorry.digest import ChainID, DiffID, Digest, Verifier
from lorry.errors import IntegrityError, InvalidInputError
from lorry.ops.unpack_ahead import OpenedAhead
from lorry.progress import ByteThrottle
from lorry.rootfs.apply import Tree
from lorry.rootfs.idmap import IdMap
from lorry.rootfs.stream import LayerReader, apply_layer
from lorry.store.fsutil import fsync_dir, os_error
from lorry.store.layers import Layer
from lorry.store.store import Store
from lorry.streams import compression_for
from lorry.transports.files import FileBlobStream

__all__ = [
    "UnpackHooks",
    "UnpackResult",
    "apply_layers",
    "check_destination",
    "incomplete_marker",
    "open_layer",
    "refuse_bad",
    "unpack_from_store",
]


#: Inflated chunks (<= 1 MiB each) the read-ahead thread may hold before the tar reader.
READ_AHEAD = 8


@dataclass(frozen=True)
class UnpackResult:
    """What an unpack applied: the image, its layers, and warnings (skipped devices)."""

    image_id: Digest
    layers: int
    warnings: list[str]


def incomplete_marker(dest: Path) -> Path:
    """The marker beside ``dest`` that says an unpack into it has not finished."""
    return dest.parent / f".{dest.name}.lorry-incomplete"


def check_destination(dest: Path, force: bool) -> None:
    """Refuse a DIR that may not be unpacked into, writing nothing (callers that fetch the
    image first check here, so a refused DIR costs no download and is left as it was)."""
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


def _prepare(dest: Path, force: bool) -> Path:
    """Check DIR may be unpacked into; create it; leave the incomplete marker beside it."""
    check_destination(dest, force)
    marker = incomplete_marker(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        marker.touch()
        fsync_dir(dest.parent)
    except OSError as exc:
        raise os_error(exc, "preparing", dest) from exc
    return marker


def open_layer(
    store: Store, layer: Layer, on_bytes: Callable[[int], None] | None = None
) -> LayerReader:
    """The stored layer's tar stream: blob size and digest checked as it is read (the stream
    fails at its end on a mismatch), inflated once, its DiffID hashed on the way, all of it in
    a read-ahead thread (close the reader; ``apply_layer`` does).

    ``on_bytes`` hears, in the reading thread, how many blob bytes were consumed, as often as
    the one progress throttle (:class:`~lorry.progress.ByteThrottle`) allows.
    """
    what = f"layer {layer.blob_digest}"
    compression = compression_for(layer.media_type)
    if compression is None:
        raise InvalidInputError(f"{what}: media type {layer.media_type} is not a layer")
    where = f"layer blob {layer.blob_digest} in store {store.root}"
    verifier = Verifier(layer.blob_digest, layer.blob_size, where)
    blob = FileBlobStream(store.layout.blob(layer.blob_digest), what=where, verifier=verifier)
    if on_bytes is None:
        return LayerReader(iter(blob), compression, what, ahead=READ_AHEAD)
    counter = _BlobCounter(iter(blob), layer.blob_size, on_bytes)
    return LayerReader(
        counter.chunks(), compression, what, ahead=READ_AHEAD, on_chunk=counter.report
    )


class _BlobCounter:
    """Counts blob bytes where they are read (the read-ahead thread) and reports them where
    the tar is read, so progress goes out from one thread in order with the other events."""

    def __init__(self, chunks: Iterator[bytes], total: int, on_bytes: Callable[[int], None]):
        self._source = chunks
        self._throttle = ByteThrottle(total)
        self._on_bytes = on_bytes
        self.done = 0

    def chunks(self) -> Iterator[bytes]:
        """The blob's chunks, counted as each is handed on."""
        for chunk in self._source:
            self.done += len(chunk)
            yield chunk

    def report(self) -> None:
        """Tell ``on_bytes`` the count when the throttle says it is due."""
        done = self.done
        if self._throttle.due(done):
            self._on_bytes(done)


@dataclass(frozen=True)
class UnpackHooks:
    """Progress of an unpack: ``on_start`` before a layer is applied, ``on_bytes`` with the
    blob bytes applied so far (throttled; in the applying thread), ``on_layer`` once it is in."""

    on_start: Callable[[Layer], None] | None = None
    on_bytes: Callable[[Layer, int], None] | None = None
    on_layer: Callable[[Layer], None] | None = None


def refuse_bad(layer: Layer) -> None:
    """Nothing is unpacked from a layer the store knows to be bad."""
    if layer.bad_diff_id is not None:
        raise IntegrityError(
            f"layer blob {layer.blob_digest} is marked bad (its content has DiffID "
            f"{layer.bad_diff_id}, not {layer.diff_id}); nothing is unpacked from it"
        )


def unpack_from_store(
    store: Store,
    image_id: Digest,
    dest: Path,
    *,
    force: bool = False,
    hooks: UnpackHooks | None = None,
    ids: IdMap | None = None,
) -> UnpackResult:
    """Apply the stored image's layers in order to ``dest``; raise on the first bad layer.

    ``ids`` shifts owners (as root). Every layer is checked before DIR is touched.
    """
    image = store.images.get(image_id)
    chain = store.layers.chain(image.top_layer)
    for layer in chain:
        refuse_bad(layer)
    layers, warnings = apply_layers(store, chain, dest, force=force, hooks=hooks, ids=ids)
    return UnpackResult(image_id, layers, warnings)


def apply_layers(
    store: Store,
    chain: Iterable[Layer],
    dest: Path,
    *,
    force: bool = False,
    hooks: UnpackHooks | None = None,
    ids: IdMap | None = None,
) -> tuple[int, list[str]]:
    """Apply the layers bottom→top as ``chain`` yields them (it may wait for each: an unpack
    that fetches); return how many and the warnings. The next layer is opened, and its
    read-ahead started, while one is applied (:class:`~lorry.ops.unpack_ahead.OpenedAhead`).

    DIR is created, and marked incomplete, only when the first layer is there to apply, so a
    source that fails before then leaves DIR as it was. Each layer's DiffID is recorded as
    found (:meth:`~lorry.store.layers.LayerStore.record_check`): a mismatch at once (it marks
    the layer bad and raises, naming both), the matches in one transaction once every layer is
    in (a failed unpack leaves them unrecorded: the next inflate checks them again).
    """
    how = hooks or UnpackHooks()
    marker: Path | None = None
    tree: Tree | None = None
    count = 0
    matched: list[tuple[ChainID, DiffID, int]] = []

    def open_checked(layer: Layer) -> LayerReader:
        refuse_bad(layer)
        heard = None if how.on_bytes is None else functools.partial(how.on_bytes, layer)
        return open_layer(store, layer, heard)

    with store.hold():
        opened = OpenedAhead(chain, open_checked, LayerReader.close, name="open layers")
        try:
            for layer, reader in opened:
                if tree is None:
                    marker = _prepare(dest, force)
                    tree = Tree(os.fspath(dest), ids=ids or IdMap())
                if how.on_start is not None:
                    how.on_start(layer)
                found, size = apply_layer(tree, reader, f"layer {layer.blob_digest}")
                if found == layer.diff_id:
                    matched.append((layer.chain_id, found, size))
                else:  # marked bad at once; raises, naming both
                    store.layers.record_check(layer.chain_id, found, size)
                count += 1
                if how.on_layer is not None:
                    how.on_layer(layer)
        finally:
            opened.close()
        with store.transaction():  # one commit for every layer found good, not one each
            for chain_id, found, size in matched:
                store.layers.record_check(chain_id, found, size)
    if tree is None:  # an image without layers: an empty tree
        marker = _prepare(dest, force)
        tree = Tree(os.fspath(dest), ids=ids or IdMap())
    assert marker is not None
    tree.finish()
    try:
        marker.unlink()
        fsync_dir(dest.parent)
    except OSError as exc:
        raise os_error(exc, "finishing", dest) from exc
    return count, list(tree.warnings)
