"""Referrers in a sync: found the source's way, written the destination's way.

A synced manifest's referrers (signatures, SBOMs, attestations) are listed through the OCI 1.1
referrers API where the source registry has it, else read from the fallback tag
(``sha256-<hex>``) when the source lists it. Each referrer is then synced by digest like any
image; a destination with the API indexes it from its ``subject``, and one without gets the
fallback tag's index, merged with what it already lists, so the two schemas convert into
each other. Whether a registry has the API is asked once per registry and remembered.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError, NotFoundError
from lorry.oci import Descriptor
from lorry.oci.index import Index
from lorry.ops.sync.ledger import LayoutDestination
from lorry.ops.sync.targets import Target
from lorry.registry.client import RegistryClient, RegistrySession
from lorry.registry.referrers import fallback_tag, merged_index
from lorry.transports.oci_layout import REF_NAME, blob_path, read_index

__all__ = ["Listing", "Referrers"]


@dataclass(frozen=True)
class Listing:
    """A subject's referrers at the source, and the fallback index they came from (if any)."""

    descriptors: tuple[Descriptor, ...] = ()
    #: The source's fallback index as stored: copied unchanged where the destination has none.
    raw: bytes | None = None


class Referrers:
    """The sync's view of referrers: which registries have the API, and both directions."""

    def __init__(self) -> None:
        self._api: dict[str, bool] = {}
        self._probing: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _ask(self, client: RegistryClient, subject: Digest) -> list[Descriptor] | None:
        """The API's answer, or None without it; the first question to a registry is asked by
        one image at a time, so a registry without the API sees one 404 per run."""
        registry = client.registry
        with self._lock:
            known = self._api.get(registry)
            probe = self._probing.setdefault(registry, threading.Lock())
        if known is False:
            return None
        if known is None:
            with probe:
                with self._lock:
                    known = self._api.get(registry)
                if known is None:
                    found = client.referrers(subject)
                    with self._lock:
                        self._api[registry] = found is not None
                    return found
        return client.referrers(subject) if known else None

    def listing(
        self, client: RegistryClient, subject: Digest, listed: tuple[str, ...] | None
    ) -> Listing:
        """``subject``'s referrers at the source: by the API, else by the fallback tag."""
        found = self._ask(client, subject)
        if found is not None:
            return Listing(tuple(found))
        tag = fallback_tag(subject)
        if listed is not None and tag not in listed:
            return Listing()
        try:
            raw, media_type, _ = client.get_manifest(tag)
        except NotFoundError:
            return Listing()
        try:
            return Listing(Index.parse(raw, media_type).manifests, raw)
        except InvalidInputError:
            return Listing()  # a tag of that name that is not an index lists no referrers

    def destination_has_api(self, client: RegistryClient, subject: Digest) -> bool:
        """Whether the destination registry indexes referrers itself (asked once)."""
        with self._lock:
            known = self._api.get(client.registry)
        return known if known is not None else self._ask(client, subject) is not None

    def write_fallback(
        self,
        session: RegistrySession,
        where: Target,
        subject: Digest,
        listing: Listing,
        *,
        dry_run: bool,
    ) -> tuple[str, Digest] | None:
        """Merge ``listing`` into the destination's fallback index of ``subject``; where it has
        none, the source's index is copied as it is (same digest).

        None when the destination has the API (nothing to write); else the action
        (``unchanged``, ``copied``, ``would-copy``) and the index's digest.
        """
        tag = fallback_tag(subject)
        if where.spec.kind == "oci":
            assert where.spec.path is not None
            existing = _layout_document(where, f"{where.repository}:{tag}")
        else:
            client = session.client(where.spec.registry, where.repository)
            if self.destination_has_api(client, subject):
                return None
            try:
                existing = client.get_manifest(tag)[0]
            except NotFoundError:
                existing = None
        if existing is not None:
            have = _listed(existing)
            if have is not None and all(d.digest in have for d in listing.descriptors):
                return "unchanged", Digest.of(existing)
            raw = merged_index(existing, listing.descriptors).raw
        elif listing.raw is not None:
            raw = listing.raw
        else:
            raw = merged_index(None, listing.descriptors).raw
        digest = Digest.of(raw)
        if dry_run:
            return "would-copy", digest
        if where.spec.kind == "oci":
            assert where.spec.path is not None
            dest = LayoutDestination(where.spec.path, f"{where.repository}:{tag}", where.name)
            dest.put_manifest(raw, mt.OCI_INDEX, digest, top=True)
            dest.commit()
        else:
            client.put_manifest(tag, raw, mt.OCI_INDEX)
        return "copied", digest


def _listed(raw: bytes) -> set[Digest] | None:
    """The digests an index lists, or None when ``raw`` is not an index."""
    try:
        return {d.digest for d in Index.parse(raw).manifests}
    except InvalidInputError:
        return None


def _layout_document(where: Target, ref: str) -> bytes | None:
    """The document a layout names ``ref``, if it has one."""
    assert where.spec.path is not None
    if not (where.spec.path / "index.json").is_file():
        return None
    _, entries = read_index(where.spec.path)
    entry = next((e for e in entries if e.annotations.get(REF_NAME) == ref), None)
    if entry is None:
        return None
    blob = blob_path(where.spec.path, entry.digest)
    try:
        raw = blob.read_bytes()
    except OSError:
        return None
    return raw if Digest.of(raw, entry.digest.algorithm) == entry.digest else None
