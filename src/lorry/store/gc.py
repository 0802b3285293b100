"""Garbage collection: remove unreferenced images, layers, blobs and stale ingests.

``prune`` takes the store lock exclusively (so it waits for every process inside
:meth:`~lorry.store.Store.hold`), then deletes, in order: images no reference points at,
layers no image or child layer uses (cascading), blobs nothing points at, and ingests nobody is
writing. Each step is its own transaction or rename, so a kill mid-prune leaves a consistent
store with less garbage, never a dangling row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorry.digest import Digest
from lorry.store.fsutil import size_or_zero
from lorry.store.ingest import remove_leftovers
from lorry.store.locks import WaitHook
from lorry.store.store import Store

__all__ = ["PruneReport", "prune", "remove_stale_ingests"]


@dataclass
class PruneReport:
    """What a prune removed, and how many bytes of blobs and ingests it freed."""

    images: list[Digest] = field(default_factory=list)
    layers: list[Digest] = field(default_factory=list)
    blobs: list[Digest] = field(default_factory=list)
    ingests: list[Digest] = field(default_factory=list)
    freed: int = 0


def prune(store: Store, *, on_wait: WaitHook | None = None) -> PruneReport:
    """Remove everything unreferenced; must not be called inside ``store.hold()``."""
    report = PruneReport()
    with store.exclusive(on_wait):
        for image in store.images.all():
            if not store.refs.for_image(image.id) and store.images.delete(image.id):
                report.images.append(image.id)
        report.layers = [layer.chain_id for layer in store.layers.delete_unreferenced()]
        keep = _live_blobs(store)
        for digest in list(store.content.walk()):
            if str(digest) in keep:
                continue
            size = size_or_zero(store.layout.blob(digest))
            if store.content.delete(digest):
                report.blobs.append(digest)
                report.freed += size
        report.ingests, freed = remove_stale_ingests(store)
        report.freed += freed
    return report


def _live_blobs(store: Store) -> set[str]:
    rows = store.db.query(
        "SELECT id FROM images UNION SELECT digest FROM image_manifests "
        "UNION SELECT blob_digest FROM layers"
    )
    return {str(r[0]) for r in rows}


def remove_stale_ingests(store: Store) -> tuple[list[Digest], int]:
    """Delete partial data and lock files nobody is writing; return digests and bytes freed."""
    return remove_leftovers(store.layout)
