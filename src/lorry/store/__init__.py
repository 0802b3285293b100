"""The local store: content-addressed blobs, layers, images and references, crash-safe and shared.

No daemon guards it, so the store guards itself: every visible change is an atomic rename or an
SQLite transaction, ingests are resumable after a kill, flock locks let two processes share one
root, and a full disk fails clearly without damaging anything. See ``docs/store.md``.

Start with :class:`Store` (``Store.open(root)``); the parts are ``store.content``
(:class:`LocalContentStore`), ``store.layers``, ``store.images``, ``store.refs`` and
``store.distmeta``; operations over them live in :mod:`lorry.store.gc`,
:mod:`lorry.store.fsck`, :mod:`lorry.store.remove` and :mod:`lorry.store.inspect`.
"""

from lorry.store.content import LocalContentStore
from lorry.store.distmeta import DistributionMetadata, RemoteBlob
from lorry.store.images import Image, ImageStore
from lorry.store.ingest import IngestWriter
from lorry.store.layers import Layer, LayerStore, next_chain_id
from lorry.store.protocols import BlobInfo, BlobWriter, ContentStore
from lorry.store.references import Ref, ReferenceStore
from lorry.store.root import FORMAT_VERSION, StoreLayout, default_root, resolve_root
from lorry.store.store import Store

__all__ = [
    "FORMAT_VERSION",
    "BlobInfo",
    "BlobWriter",
    "ContentStore",
    "DistributionMetadata",
    "Image",
    "ImageStore",
    "IngestWriter",
    "Layer",
    "LayerStore",
    "LocalContentStore",
    "Ref",
    "ReferenceStore",
    "RemoteBlob",
    "Store",
    "StoreLayout",
    "default_root",
    "next_chain_id",
    "resolve_root",
]
