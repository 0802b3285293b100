"""The one entry point for manifest documents of any kind: :func:`parse_manifest`."""

from __future__ import annotations

from lorry import mediatypes as mt
from lorry.oci import _detect
from lorry.oci.index import Index
from lorry.oci.manifest import Manifest
from lorry.oci.schema1 import Schema1Manifest

__all__ = ["Document", "parse_manifest"]

#: Any document a registry may return for a manifest reference.
Document = Manifest | Index | Schema1Manifest


def parse_manifest(raw: bytes, content_type: str | None = None) -> Document:
    """Parse a manifest, index or schema1 document, deciding its type once.

    The type comes from the body's ``mediaType`` and the ``content_type`` header (parameters
    ignored; a generic one such as ``application/json`` says nothing); when they disagree, or
    the fields contradict the type, :class:`~lorry.errors.InvalidInputError` is raised; an
    unknown type is :class:`~lorry.errors.UnsupportedError`. Documents over 4 MiB are refused.
    """
    obj, media_type = _detect.load(raw, content_type)
    if mt.is_index(media_type):
        return Index.from_object(obj, raw, media_type)
    if media_type in (mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED):
        return Schema1Manifest.from_object(obj, raw, media_type)
    return Manifest.from_object(obj, raw, media_type)
