"""The image format as pure data: descriptors, manifests, indexes, configs and schema1.

Every parsed document keeps the exact bytes it came from (``raw``) and the digest computed
from them (``digest``; for signed schema1, from the JWS payload). Nothing here does I/O.
"""

from __future__ import annotations

from lorry.oci._json import MAX_MANIFEST_SIZE
from lorry.oci.config import MAX_CONFIG_SIZE, History, ImageConfig
from lorry.oci.descriptor import Descriptor
from lorry.oci.index import Index
from lorry.oci.manifest import Manifest
from lorry.oci.parse import Document, parse_manifest
from lorry.oci.schema1 import Schema1Manifest

__all__ = [
    "MAX_CONFIG_SIZE",
    "MAX_MANIFEST_SIZE",
    "Descriptor",
    "Document",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "Schema1Manifest",
    "parse_manifest",
]
