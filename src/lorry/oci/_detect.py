"""Telling what a manifest document is, from its ``mediaType`` field and the Content-Type.

The 2021 advisories GHSA-77vh-xpmg-72qh (image-spec) and GHSA-5j5w-g665-5m35 (containerd)
showed that a document readable as both an image manifest and an index lets two clients see two
different images under one digest. So the type is decided once, here, and a document whose
fields or Content-Type contradict it is refused rather than guessed at.
"""

from __future__ import annotations

from typing import Any

from lorry import mediatypes as mt
from lorry.errors import InvalidInputError, UnsupportedError
from lorry.oci import _json

#: Content-Types that say nothing about the document (registries send them for schema1).
_GENERIC = frozenset(
    {"", "application/json", "text/plain", "application/octet-stream", "binary/octet-stream"}
)
_SCHEMA1 = (mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED)
# Docker's v2 types carry their mediaType in the body; distribution refuses them without it.
_BODY_TYPE_REQUIRED = (mt.DOCKER_MANIFEST_V2, mt.DOCKER_MANIFEST_LIST)


def content_type_base(content_type: str | None) -> str:
    """``type/subtype`` of a Content-Type header, parameters dropped, lowercased."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def load(
    raw: bytes, content_type: str | None, what: str = "manifest"
) -> tuple[dict[str, Any], str]:
    """Decode a manifest document and decide its media type; raise on any contradiction."""
    obj = _json.load_object(raw, what, _json.MAX_MANIFEST_SIZE)
    body = _json.opt_str(obj, "mediaType", what)
    header = content_type_base(content_type)
    if header not in _GENERIC and body is not None and body != header:
        raise InvalidInputError(
            f"{what}: Content-Type is {header} but the document's mediaType is {body}"
        )
    version = _json.req_int(obj, "schemaVersion", what)
    media_type = body or (header if header not in _GENERIC else _sniff(obj, version, what))
    if media_type in _SCHEMA1 or (version == 1 and body is None and header in _GENERIC):
        media_type = mt.DOCKER_MANIFEST_V1_SIGNED if "signatures" in obj else mt.DOCKER_MANIFEST_V1
    if not (mt.is_manifest(media_type) or mt.is_index(media_type)):
        raise UnsupportedError(f"{what}: unsupported manifest media type {media_type}")
    want_version = 1 if media_type in _SCHEMA1 else 2
    if version != want_version:
        raise InvalidInputError(
            f"{what}: schemaVersion {version} is not {want_version} as {media_type} requires"
        )
    if body is None and media_type in _BODY_TYPE_REQUIRED:
        raise InvalidInputError(f"{what}: {media_type} document has no mediaType field")
    _check_fields(obj, media_type, what)
    return obj, media_type


def _sniff(obj: dict[str, Any], version: int, what: str) -> str:
    """The type of a document with no mediaType and a generic Content-Type (OCI allows it)."""
    if version == 1:
        return mt.DOCKER_MANIFEST_V1
    if version != 2:
        raise UnsupportedError(f"{what}: unsupported schemaVersion {version}")
    if "manifests" in obj:
        return mt.OCI_INDEX
    if "config" in obj or "layers" in obj:
        return mt.OCI_MANIFEST
    raise InvalidInputError(f"{what}: no mediaType, and neither manifests nor config/layers")


def _check_fields(obj: dict[str, Any], media_type: str, what: str) -> None:
    """Refuse fields that belong to another document type (the ambiguity advisories)."""
    stray: list[str]
    if mt.is_index(media_type):
        stray = [k for k in ("config", "layers", "fsLayers") if k in obj]
    elif media_type in _SCHEMA1:
        stray = [k for k in ("config", "layers", "manifests") if k in obj]
    else:
        stray = [k for k in ("manifests", "fsLayers") if k in obj]
    if stray:
        raise InvalidInputError(
            f"{what}: a {media_type} document must not have a {stray[0]!r} field"
        )
