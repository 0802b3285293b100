"""Manifests: GET, HEAD, PUT and DELETE by tag or digest.

The bytes are the truth (DESIGN.md §1): the digest is computed from the bytes received, and
``Docker-Content-Digest`` is only a hint that may be absent. A request by digest is verified
before anything is returned. The Accept header lists every manifest type lorry parses, so a
registry never silently downgrades an index to one platform's manifest. Content-Type is checked
against the document's own ``mediaType``; documents are capped at 4 MiB as containerd does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import ALGORITHMS, Digest
from lorry.errors import (
    IntegrityError,
    InvalidInputError,
    LorryError,
    NotFoundError,
    UnsupportedError,
)
from lorry.oci._json import parse_json
from lorry.registry.redact import get_logger
from lorry.registry.repo import RepoContext

__all__ = [
    "MAX_MANIFEST_SIZE",
    "ManifestInfo",
    "delete_manifest",
    "get_manifest",
    "head_manifest",
    "manifest_media_type",
    "parse_ref",
    "put_manifest",
]

log = get_logger(__name__)

#: The largest manifest lorry fetches or pushes (containerd's limit; registries reject more).
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
_KNOWN = frozenset(mt.MANIFEST_TYPES + mt.INDEX_TYPES)


@dataclass(frozen=True)
class ManifestInfo:
    """What a HEAD says about a manifest: its media type, digest and size."""

    media_type: str
    digest: Digest
    size: int


def parse_ref(ref: str | Digest) -> str | Digest:
    """A tag stays a string; ``alg:hex`` becomes a :class:`Digest` (validated)."""
    if isinstance(ref, Digest):
        return ref
    if ":" in ref and ref.split(":", 1)[0] in ALGORITHMS:
        return Digest.parse(ref)
    if not ref:
        raise InvalidInputError("empty tag or digest")
    return ref


def manifest_media_type(raw: bytes, content_type: str | None, what: str) -> str:
    """The document's media type, checked against the Content-Type the registry sent."""
    header = (content_type or "").split(";", 1)[0].strip().lower()
    doc = _load(raw, what)
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        if header in _KNOWN and header != declared:
            raise IntegrityError(
                f"{what}: Content-Type {header} does not match the document's mediaType {declared}"
            )
        return declared
    if header in _KNOWN:
        return header
    if doc.get("schemaVersion") == 1:
        return mt.DOCKER_MANIFEST_V1_SIGNED if "signatures" in doc else mt.DOCKER_MANIFEST_V1
    if isinstance(doc.get("manifests"), list):
        return mt.OCI_INDEX
    if isinstance(doc.get("config"), dict):
        return mt.OCI_MANIFEST
    raise UnsupportedError(f"{what}: unknown manifest type {header or 'without Content-Type'}")


def get_manifest(ctx: RepoContext, ref: str | Digest) -> tuple[bytes, str, Digest]:
    """The manifest's raw bytes, media type and digest (verified when ``ref`` is a digest)."""
    ref = parse_ref(ref)
    what = f"fetching manifest {ref} from {ctx.name}"
    with ctx.read(
        "GET", f"/manifests/{ref}", what=what, headers={"Accept": mt.MANIFEST_ACCEPT}
    ) as resp:
        raw, longer = resp.read_capped(MAX_MANIFEST_SIZE)
        content_type = resp.header("Content-Type")
        hint = resp.header("Docker-Content-Digest")
    if longer:
        raise UnsupportedError(f"{what}: larger than the {MAX_MANIFEST_SIZE} byte limit")
    if isinstance(ref, Digest):
        got = Digest.of(raw, ref.algorithm)
        # Signed schema1 digests exclude the signatures: only the registry's hint can match.
        if got != ref and not (hint == str(ref) and b'"signatures"' in raw):
            raise IntegrityError(f"{what}: digest mismatch: got {got}")
        return raw, manifest_media_type(raw, content_type, what), ref
    media_type = manifest_media_type(raw, content_type, what)
    digest = Digest.of(raw)
    if media_type == mt.DOCKER_MANIFEST_V1_SIGNED and hint:
        digest = Digest.parse(hint)  # signed schema1 digests exclude the signatures
    elif hint and hint != str(digest):
        log.debug("%s: registry's digest hint %s differs from the bytes' %s", what, hint, digest)
    return raw, media_type, digest


def head_manifest(ctx: RepoContext, ref: str | Digest) -> ManifestInfo | None:
    """Media type, digest and size without the body; None when the manifest does not exist.

    Falls back to a GET when HEAD is refused (405), redirected to storage that refuses it (403),
    or answered without ``Docker-Content-Digest`` or Content-Type.
    """
    ref = parse_ref(ref)
    what = f"checking manifest {ref} in {ctx.name}"
    headers = {"Accept": mt.MANIFEST_ACCEPT}
    try:
        resp = ctx.read("HEAD", f"/manifests/{ref}", what=what, headers=headers, expect=(200, 404))
    except LorryError as exc:
        if exc.status not in (403, 405):
            raise
        log.debug("%s: HEAD refused (%s); falling back to GET", what, exc.status)
        return _info_by_get(ctx, ref)
    with resp:
        if resp.status == 404:
            return None
        hint = resp.header("Docker-Content-Digest")
        content_type = (resp.header("Content-Type") or "").split(";", 1)[0].strip()
        size = resp.content_length
    if not hint or content_type not in _KNOWN or size is None:
        log.debug("%s: HEAD lacks digest, type or size; falling back to GET", what)
        return _info_by_get(ctx, ref)
    return ManifestInfo(content_type, Digest.parse(hint), size)


def _info_by_get(ctx: RepoContext, ref: str | Digest) -> ManifestInfo | None:
    """The HEAD answer computed from a GET (None on not-found)."""
    try:
        raw, media_type, digest = get_manifest(ctx, ref)
    except NotFoundError:
        return None
    return ManifestInfo(media_type, digest, len(raw))


def put_manifest(ctx: RepoContext, ref: str | Digest, raw: bytes, media_type: str) -> Digest:
    """Push ``raw`` under a tag or its digest; return its digest (computed from the bytes)."""
    ref = parse_ref(ref)
    what = f"pushing manifest {ref} to {ctx.name}"
    if len(raw) > MAX_MANIFEST_SIZE:
        raise InvalidInputError(f"{what}: larger than the {MAX_MANIFEST_SIZE} byte limit")
    declared = _load(raw, what).get("mediaType")
    if isinstance(declared, str) and declared and declared != media_type:
        raise InvalidInputError(f"{what}: media type {media_type} but document says {declared}")
    algorithm = ref.algorithm if isinstance(ref, Digest) else "sha256"
    digest = Digest.of(raw, algorithm)
    if isinstance(ref, Digest) and digest != ref:
        raise IntegrityError(f"{what}: the bytes hash to {digest}")
    url = ctx.url(ctx.endpoint, f"/manifests/{ref}")
    headers = {"Content-Type": media_type}
    with ctx.write("PUT", url, what=what, headers=headers, body=raw, expect=(200, 201)) as resp:
        hint = resp.header("Docker-Content-Digest")
        resp.drain()
    if hint and hint != str(digest) and algorithm == "sha256":
        log.warning("%s: registry reports digest %s, the bytes hash to %s", what, hint, digest)
    return digest


def delete_manifest(ctx: RepoContext, digest: Digest | str) -> None:
    """Delete a manifest by digest (registries reject deletion by tag)."""
    ref = parse_ref(digest)
    what = f"deleting manifest {ref} from {ctx.name}"
    url = ctx.url(ctx.endpoint, f"/manifests/{ref}")
    with ctx.write("DELETE", url, what=what, expect=(200, 202, 204)) as resp:
        resp.drain()


def _load(raw: bytes, what: str) -> dict[str, Any]:
    """The manifest as a JSON object; InvalidInputError when it is not one."""
    try:
        doc = parse_json(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{what}: manifest is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{what}: manifest is not a JSON object")
    return doc
