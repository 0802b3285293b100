"""The engine's first stage: from a top document to the image manifests to move (xfer-spec
§4.2, §4.5).

The top document is fetched by tag or digest. Fetched by digest, its digest is checked before
anything is parsed (for signed schema1, the digest of the JWS payload, which is the one
registries and docker name it by). An index (OCI index or Docker manifest list) is resolved to
the best entry for the wanted platform — host by default — or to every entry with
``all_platforms``; nested indexes are followed (at most ``_MAX_NESTING`` deep), unknown entry
types skipped; an index of more than :data:`MAX_INDEX_ENTRIES` entries is refused as soon as it
is parsed, and one resolve fetches at most that many documents below the top. Schema1 manifests
are checked and cleaned as moby's ``fixManifestLayers`` does. Everything here blocks: run it in
a worker thread. :func:`platform_warning` is the one rule for docker's warning when a
single-platform image is not the platform asked for (or the host's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, NotFoundError, UnsupportedError
from lorry.oci import Index, Manifest, Schema1Manifest, parse_manifest
from lorry.platform import Platform, matches

__all__ = [
    "MAX_INDEX_ENTRIES",
    "ManifestGetter",
    "Resolved",
    "Target",
    "choose",
    "display_platform",
    "platform_warning",
    "verify_top",
]

_MAX_NESTING = 4
#: The most entries an index may list, and the most documents one resolve fetches below the top
#: document: a hostile index of 10,000 entries costs its own bytes, not 10,000 requests.
MAX_INDEX_ENTRIES = 1000


class ManifestGetter(Protocol):
    """Where documents come from: a registry client or any transport's image source."""

    def get_manifest(self, ref: str | Digest) -> tuple[bytes, str, Digest]:
        """The document's bytes, media type and digest."""


@dataclass(frozen=True)
class Target:
    """One image to pull: its manifest and the index entry's platform it was chosen for."""

    manifest: Manifest | Schema1Manifest
    digest: Digest
    media_type: str
    platform: Platform | None = None


@dataclass(frozen=True)
class Resolved:
    """What a reference points at: the top document and the images chosen from it.

    ``digest`` is the one to report and record as the repo digest: the index's when the
    reference names an index, as docker does. ``indexes`` are the index documents passed
    through (outermost first), kept so their exact bytes can be stored.
    """

    digest: Digest
    media_type: str
    targets: tuple[Target, ...]
    indexes: tuple[Index, ...] = ()


def display_platform(platform: Platform) -> str:
    """How a platform is named in messages: the amd64 micro-architecture level left out."""
    if platform.architecture == "amd64" and (platform.variant or "").startswith("v"):
        return f"{platform.os}/amd64"
    return str(platform)


def platform_warning(
    reference: str,
    actual: Platform,
    requested: Platform | None = None,
    *,
    host: Platform | None = None,
) -> str | None:
    """Docker's one-line warning when a single-platform image does not fit, else None.

    An index never needs it (its entry is chosen by platform, or none is). With ``requested``
    the words are those of ``docker pull --platform``; without, those of ``docker run``, where
    the image must run on ``host`` (default: this machine).
    """
    if requested is not None:
        if matches(requested, actual):
            return None
        return (
            f"WARNING: image with reference {reference} was found but does not match the "
            f"specified platform: wanted {requested}, actual: {actual}"
        )
    machine = host or Platform.host()
    if matches(machine, actual):
        return None
    return (
        f"WARNING: The requested image's platform ({actual}) does not match the detected host "
        f"platform ({machine}) and no specific platform was requested"
    )


def choose(
    client: ManifestGetter,
    raw: bytes,
    media_type: str,
    digest: Digest,
    name: str,
    *,
    platform: Platform | None = None,
    all_platforms: bool = False,
    by_digest: Digest | None = None,
) -> Resolved:
    """Choose the image(s) of a fetched top document: itself, or index entries by platform."""
    doc = parse_manifest(raw, media_type)
    if isinstance(doc, Schema1Manifest):
        digest = by_digest or doc.digest
        return Resolved(digest, doc.media_type, (Target(doc.fix_layers(), digest, doc.media_type),))
    if isinstance(doc, Manifest):
        return Resolved(digest, doc.media_type, (Target(doc, digest, doc.media_type),))
    _check_entries(doc)
    client = _Budget(client, doc.digest)
    host = platform or Platform.host()
    indexes: list[Index] = []
    if all_platforms:
        targets = _all_entries(client, doc, indexes, 0)
    else:
        targets = [_select(client, doc, host, indexes, 0)]
    if not targets:
        raise NotFoundError(f"index {digest} of {name} lists no image manifest lorry can pull")
    return Resolved(digest, doc.media_type, tuple(targets), tuple(indexes))


def verify_top(raw: bytes, media_type: str, wanted: Digest) -> None:
    """Check the bytes against the digest asked for, before they are trusted at all."""
    if Digest.of(raw, wanted.algorithm) == wanted:
        return
    if media_type == mt.DOCKER_MANIFEST_V1_SIGNED and Schema1Manifest.parse(
        raw, media_type
    ).matches_digest(wanted):
        return
    raise IntegrityError(f"manifest verification failed for digest {wanted}")


class _Budget:
    """A ManifestGetter that refuses to fetch more than :data:`MAX_INDEX_ENTRIES` documents."""

    def __init__(self, client: ManifestGetter, top: Digest) -> None:
        self._client = client
        self._top = top
        self._left = MAX_INDEX_ENTRIES

    def get_manifest(self, ref: str | Digest) -> tuple[bytes, str, Digest]:
        """The client's answer, while the budget lasts."""
        if self._left <= 0:
            raise UnsupportedError(
                f"index {self._top}: more than {MAX_INDEX_ENTRIES} manifests below it"
            )
        self._left -= 1
        return self._client.get_manifest(ref)


def _check_entries(index: Index) -> None:
    """Refuse an index with more entries than lorry follows, before any entry is fetched."""
    if len(index.manifests) > MAX_INDEX_ENTRIES:
        raise UnsupportedError(
            f"index {index.digest}: {len(index.manifests)} entries, more than the "
            f"{MAX_INDEX_ENTRIES} lorry follows"
        )


def _child(client: ManifestGetter, entry_digest: Digest, size: int) -> Manifest | Index:
    """Fetch an index entry by digest (verified by the client) and check its size."""
    raw, media_type, _ = client.get_manifest(entry_digest)
    if len(raw) != size:
        raise IntegrityError(f"manifest {entry_digest}: {len(raw)} bytes, the index says {size}")
    doc = parse_manifest(raw, media_type)
    if isinstance(doc, Schema1Manifest):
        raise UnsupportedError(f"manifest {entry_digest}: a schema1 manifest inside an index")
    if isinstance(doc, Index):
        _check_entries(doc)
    return doc


def _select(
    client: ManifestGetter, index: Index, want: Platform, seen: list[Index], depth: int
) -> Target:
    """The best entry for ``want``; nested indexes are searched in preference order."""
    if depth > _MAX_NESTING:
        raise UnsupportedError(f"index {index.digest}: nested more than {_MAX_NESTING} deep")
    seen.append(index)
    for entry in index.matching(want):
        doc = _child(client, entry.digest, entry.size)
        if isinstance(doc, Manifest):
            return Target(doc, entry.digest, doc.media_type, entry.platform)
        try:
            return _select(client, doc, want, seen, depth + 1)
        except NotFoundError:
            del seen[depth + 1 :]
            continue
    raise NotFoundError(
        f"no matching manifest for {display_platform(want)} in the manifest list entries"
    )


def _all_entries(
    client: ManifestGetter, index: Index, seen: list[Index], depth: int
) -> list[Target]:
    """Every image manifest the index (and any nested index) lists, in index order."""
    if depth > _MAX_NESTING:
        raise UnsupportedError(f"index {index.digest}: nested more than {_MAX_NESTING} deep")
    seen.append(index)
    out: list[Target] = []
    for entry in index.manifests:
        if not (mt.is_manifest(entry.media_type) or mt.is_index(entry.media_type)):
            continue  # unknown entry types are skipped (image-spec)
        doc = _child(client, entry.digest, entry.size)
        if isinstance(doc, Manifest):
            out.append(Target(doc, entry.digest, doc.media_type, entry.platform))
        else:
            out.extend(_all_entries(client, doc, seen, depth + 1))
    return out
