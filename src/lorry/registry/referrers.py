"""The OCI 1.1 referrers API and its fallback tag schema (distribution-spec, "Listing Referrers").

``GET /v2/<name>/referrers/<digest>`` answers an image index whose entries are the manifests
whose ``subject`` is that digest (signatures, SBOMs, attestations). A registry without the API
answers 404 (the spec forbids a 404 from one that has it): :func:`list_referrers` returns None
and the caller uses the fallback schema instead, an index under the tag ``<alg>-<hex>`` that
clients keep up to date themselves (:func:`fallback_tag`, :func:`merged_index`). Pages
follow ``Link``; the answer is bounded like any manifest.
"""

from __future__ import annotations

from collections.abc import Sequence

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError, UnavailableError
from lorry.oci import Descriptor
from lorry.oci._json import MAX_MANIFEST_SIZE
from lorry.oci.index import Index
from lorry.registry.auth import scope_pull
from lorry.registry.repo import RepoContext
from lorry.registry.tags import next_link

__all__ = ["MAX_REFERRERS", "fallback_tag", "list_referrers", "merged_index"]

#: The most referrers read for one subject (pages together); more is a hostile registry.
MAX_REFERRERS = 10_000


def fallback_tag(subject: Digest) -> str:
    """The fallback schema's tag for ``subject``: ``<alg>-<hex>``, cut to a tag's 128 chars."""
    return f"{subject.algorithm}-{subject.hex}"[:128]


def list_referrers(ctx: RepoContext, subject: Digest) -> list[Descriptor] | None:
    """The descriptors of ``subject``'s referrers, or None when the registry has no API.

    Asked of the registry itself (a mirror may lack referrers it has not seen).
    """
    what = f"listing referrers of {subject} in {ctx.name}"
    endpoint = ctx.endpoint
    url: str | None = ctx.url(endpoint, f"/referrers/{subject}")
    out: list[Descriptor] = []
    seen: set[str] = set()
    while url is not None:
        if url in seen:
            raise UnavailableError(f"{what}: pagination loops back to a page already read")
        seen.add(url)
        with ctx.transport.request(
            "GET",
            url,
            endpoint=endpoint,
            scopes=[scope_pull(ctx.repository)],
            what=what,
            headers={"Accept": mt.OCI_INDEX},
            expect=(200, 404),
        ) as resp:
            if resp.status == 404:
                resp.drain()
                if out:  # a later page vanished: not "no API"
                    raise UnavailableError(f"{what}: a page of the listing is gone")
                return None
            raw, longer = resp.read_capped(MAX_MANIFEST_SIZE)
            if longer:
                raise UnavailableError(f"{what}: a page is larger than {MAX_MANIFEST_SIZE} bytes")
            url = next_link(resp.header_all("Link"), resp.url)
        try:
            page = Index.parse(raw, mt.OCI_INDEX)
        except InvalidInputError as exc:
            raise UnavailableError(f"{what}: the answer is not an image index: {exc}") from None
        out += page.manifests
        if len(out) > MAX_REFERRERS:
            raise UnavailableError(f"{what}: more than {MAX_REFERRERS} referrers")
    return out


def merged_index(existing: bytes | None, add: Sequence[Descriptor]) -> Index:
    """The fallback tag's index with ``add`` in it: entries already there (by digest) kept
    once, new ones appended, so referrers another client put there are not lost."""
    entries: list[Descriptor] = []
    if existing is not None:
        try:
            entries = list(Index.parse(existing).manifests)
        except InvalidInputError:
            entries = []  # not an index: the tag is replaced by a valid one
    have = {d.digest for d in entries}
    for desc in add:
        if desc.digest not in have:
            have.add(desc.digest)
            entries.append(desc)
    return Index.build(mt.OCI_INDEX, entries)
