"""The store's distribution metadata as a registry destination's :class:`BlobMemory` (push).

Distribution metadata records (DiffID, blob digest, registry, repository) for every layer the
store computed itself (docs/store.md). A push asks it where else in the target registry a
layer's very blob is known to live (cross-repository mount candidates, xfer-spec §4.7), drops a
record the registry contradicts, and records the target once the blob is there, so the next
push skips or mounts it.
"""

from __future__ import annotations

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.oci import Descriptor
from lorry.store import Store
from lorry.store.distmeta import RemoteBlob

__all__ = ["StoreBlobMemory", "mount_candidates"]


def _common_prefix(a: str, b: str) -> int:
    """How many leading path components two repository names share."""
    n = 0
    for x, y in zip(a.split("/"), b.split("/"), strict=False):
        if x != y:
            break
        n += 1
    return n


def _mount_budget(size: int) -> int:
    """How many mount candidates a blob of ``size`` bytes is worth (Docker's thresholds)."""
    if size > 10 * 1000 * 1000:
        return 4
    if size > 100 * 1000:
        return 3
    return 1


def mount_candidates(
    records: list[RemoteBlob], digest: Digest, repository: str, size: int
) -> list[str]:
    """Other repositories known to hold exactly ``digest``, best first, within the budget.

    Best = most leading path components shared with the target, then most recently seen
    (``records`` come newest first and the sort is stable).
    """
    repos: list[str] = []
    for rec in records:
        same = rec.blob_digest == digest and rec.repository != repository
        if same and rec.repository not in repos:
            repos.append(rec.repository)
    repos.sort(key=lambda r: -_common_prefix(r, repository))
    return repos[: _mount_budget(size)]


class StoreBlobMemory:
    """Distribution metadata of ``store`` for blobs going to ``registry``/``repository``.

    Only layers have records (they are keyed by the DiffID the store computed); other blobs
    (configs) have no candidates and are not recorded.
    """

    def __init__(self, store: Store, registry: str, repository: str) -> None:
        self.store = store
        self.registry = registry
        self.repository = repository

    def diff_id(self, desc: Descriptor) -> Digest | None:
        """The DiffID records of this layer blob are kept under, else None (never inflates).

        The one the store computed, else the one a registered layer of this blob claims:
        records serve to find this exact blob again, so a claim is good enough here.
        """
        if not mt.is_layer(desc.media_type) or not self.store.content.exists(desc.digest):
            return None
        computed = self.store.content.info(desc.digest).diff_id
        if computed is not None:
            return computed
        layers = self.store.layers.by_blob(desc.digest)
        return layers[0].diff_id if layers else None

    def _records(self, desc: Descriptor) -> list[RemoteBlob]:
        diff_id = self.diff_id(desc)
        return self.store.distmeta.for_diff_id(diff_id, self.registry) if diff_id else []

    def mount_sources(self, desc: Descriptor) -> list[str]:
        """Other repositories of the registry that hold exactly this blob, best first."""
        return mount_candidates(self._records(desc), desc.digest, self.repository, desc.size)

    def forget(self, desc: Descriptor) -> None:
        """Drop a record that says the target repository has the blob (the registry says not)."""
        if any(
            r.repository == self.repository and r.blob_digest == desc.digest
            for r in self._records(desc)
        ):
            self.store.distmeta.forget(desc.digest, self.registry, self.repository)

    def remember(self, desc: Descriptor) -> None:
        """Record that the target repository has this layer blob now."""
        diff_id = self.diff_id(desc)
        if diff_id is not None:
            self.store.distmeta.record(
                diff_id, desc.digest, self.registry, self.repository, claimed=True
            )
