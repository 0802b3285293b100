"""Check a store for damage: re-hash every blob and check every row points at something real.

Partial ingests are not damage (they are resumable work); everything else that does not add
up is a :class:`Problem`: a blob whose bytes do not match its name, a layer whose blob or parent
is missing or whose ChainID, DiffID or reference count is wrong, an image whose config or top
layer is missing or disagrees with ``rootfs.diff_ids``, a reference to a missing image.
A damaged database (:func:`check_database`, checked without opening the store) is one problem;
``lorry fsck --repair`` rebuilds it (:mod:`lorry.store.repair`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from lorry.digest import Digest, chain_id
from lorry.errors import IntegrityError, LorryError
from lorry.store.db import database_damage
from lorry.store.images import diff_ids_of
from lorry.store.ingest import READ_CHUNK
from lorry.store.layers import bad_layer_error, next_chain_id
from lorry.store.root import StoreLayout
from lorry.store.store import Store

__all__ = ["FsckReport", "Problem", "check_database", "fsck"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One piece of damage: what kind of object, which one, and what is wrong."""

    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.message}"


@dataclass
class FsckReport:
    """The result of :func:`fsck`: how much was checked and every problem found."""

    blobs: int = 0
    layers: int = 0
    images: int = 0
    references: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no damage was found."""
        return not self.problems


def check_database(layout: StoreLayout) -> Problem | None:
    """The damage of the store's database as a problem, or None; never writes to the store."""
    path = layout.database
    reason = database_damage(path, layout.has_blobs)
    if reason is None:
        return None
    return Problem("database", str(path), f"{reason}: run 'lorry fsck --repair' to rebuild it")


def fsck(store: Store, *, deep: bool = False) -> FsckReport:
    """Check the whole store; never raises for damage it can describe.

    ``deep`` also inflates every layer and checks its DiffID (:meth:`LayerStore.verify`): a
    layer registered on its config's claim is verified, or marked bad and reported
    (kind ``diffid``).
    """
    report = FsckReport()
    bad = report.problems
    for row in store.db.query("PRAGMA integrity_check"):
        if row[0] != "ok":
            bad.append(Problem("database", str(store.layout.database), str(row[0])))
    blobs = _check_blobs(store, report)
    _check_layers(store, report, blobs, deep=deep)
    for image in store.images.all():
        report.images += 1
        _check_image(store, image.id, image.top_layer, blobs, bad)
    for ref in store.refs.all():
        report.references += 1
        if store.images.find(ref.image_id) is None:
            bad.append(Problem("reference", str(ref), f"image {ref.image_id} does not exist"))
    return report


def _check_blobs(store: Store, report: FsckReport) -> set[Digest]:
    good: set[Digest] = set()
    for digest in store.content.walk():
        report.blobs += 1
        h = hashlib.new(digest.algorithm)
        with store.content.open_blob(digest) as f:
            while chunk := f.read(READ_CHUNK):
                h.update(chunk)
        if h.hexdigest() != digest.hex:
            report.problems.append(
                Problem("blob", str(digest), f"content hashes to {h.hexdigest()}")
            )
            continue
        info = store.content.info(digest)
        rows = store.db.query("SELECT size FROM blob_info WHERE digest = ?", (str(digest),))
        if rows and rows[0][0] != info.size:
            report.problems.append(
                Problem("blob", str(digest), f"size is {info.size}, recorded {rows[0][0]}")
            )
        good.add(digest)
    return good


def _check_layers(store: Store, report: FsckReport, blobs: set[Digest], *, deep: bool) -> None:
    bad = report.problems
    layers = {layer.chain_id: layer for layer in store.layers.all()}
    users: dict[Digest, int] = dict.fromkeys(layers, 0)
    for image in store.images.all():
        if image.top_layer in users:
            users[image.top_layer] += 1
    for layer in layers.values():
        if layer.parent is not None and layer.parent in users:
            users[layer.parent] += 1
    for cid, layer in layers.items():
        report.layers += 1
        name = str(cid)
        if layer.blob_digest not in blobs:
            bad.append(Problem("layer", name, f"blob {layer.blob_digest} is missing or damaged"))
        if layer.parent is not None and layer.parent not in layers:
            bad.append(Problem("layer", name, f"parent {layer.parent} does not exist"))
        if next_chain_id(layer.parent, layer.diff_id) != cid:
            bad.append(Problem("layer", name, "ChainID does not match parent and DiffID"))
        if deep and layer.blob_digest in blobs:
            try:
                store.layers.verify(cid)
            except IntegrityError as exc:
                bad.append(Problem("diffid", name, str(exc)))
                continue
        elif layer.bad_diff_id is not None:
            bad.append(Problem("diffid", name, str(bad_layer_error(layer))))
            continue
        info = store.content.info(layer.blob_digest) if layer.blob_digest in blobs else None
        if info is not None and info.diff_id is not None and info.diff_id != layer.diff_id:
            bad.append(
                Problem("layer", name, f"blob's DiffID is {info.diff_id}, not {layer.diff_id}")
            )
        if users[cid] != layer.refcount:
            bad.append(Problem("layer", name, f"refcount {layer.refcount}, {users[cid]} users"))


def _check_image(
    store: Store, image_id: Digest, top: Digest | None, blobs: set[Digest], bad: list[Problem]
) -> None:
    name = str(image_id)
    if image_id not in blobs:
        bad.append(Problem("image", name, "config blob is missing or damaged"))
        return
    try:
        diffs = diff_ids_of(store.images.config(image_id))
    except LorryError as exc:
        bad.append(Problem("image", name, f"config unreadable: {exc}"))
        return
    want = chain_id(diffs) if diffs else None
    if want != top:
        bad.append(Problem("image", name, f"top layer {top} does not match rootfs ({want})"))
    elif top is not None and store.layers.find(top) is None:
        bad.append(Problem("image", name, f"top layer {top} does not exist"))
    for digest, _ in store.images.manifests(image_id):
        if digest not in blobs:
            bad.append(Problem("image", name, f"manifest {digest} is missing or damaged"))
