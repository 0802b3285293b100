"""``lorry:REF``: the local store as an image source and destination.

As a source it sends what push sends (:mod:`~lorry.transports.store_plan`): the exact
documents recorded when the image arrived, or one built deterministically for a local image.
As a destination it writes blobs through the store's resumable, verifying ingest (which also
computes each layer's DiffID), and at :meth:`StoreDestination.commit` registers the layer
chain, checks it against the config's ``rootfs.diff_ids``, creates the image, records its
documents (:mod:`~lorry.transports.store_records`) and moves the tag. Both hold
:meth:`Store.hold` while open, so a concurrent prune cannot delete what they use.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from lorry import mediatypes as mt
from lorry.digest import DiffID, Digest
from lorry.errors import IntegrityError, InvalidInputError
from lorry.oci import Descriptor, Manifest, parse_manifest
from lorry.platform import Platform, ranked
from lorry.reference import Reference, parse_docker_ref
from lorry.store import Image, Store
from lorry.store.images import diff_ids_of, parse_config
from lorry.store.inspect import find_image
from lorry.transports.files import FileBlobStream, write_blob
from lorry.transports.protocols import BlobOpener, DestinationProperties
from lorry.transports.store_plan import plan_push
from lorry.transports.store_records import Document, record_image

__all__ = ["StoreDestination", "StoreSource"]


class StoreSource:
    """A local image as an :class:`~lorry.transports.ImageSource`."""

    def __init__(self, store: Store, ref: str, name: str) -> None:
        self.store = store
        self.ref = ref
        self._name = name
        self._built: dict[Digest, tuple[bytes, str]] = {}
        self._hold = ExitStack()
        self._hold.enter_context(store.hold())

    @property
    def name(self) -> str:
        """The reference as the user wrote it."""
        return self._name

    def get_manifest(self, ref: str | Digest | None = None) -> tuple[bytes, str, Digest]:
        """The image's document (recorded, else built); by digest any stored document."""
        if isinstance(ref, Digest):
            if ref in self._built:
                raw, media_type = self._built[ref]
                return raw, media_type, ref
            raw = self.store.content.read_bytes(ref)
            media_type = self.store.content.info(ref).media_type or parse_manifest(raw).media_type
            return raw, media_type, Digest.of(raw, ref.algorithm)
        image_id, source = find_image(self.store, ref or self.ref)
        plan = plan_push(self.store, image_id, source)
        if plan.built:
            self._built[plan.digest] = (plan.raw, plan.media_type)
        return plan.raw, plan.media_type, plan.digest

    def open_blob(self, desc: Descriptor, offset: int = 0) -> FileBlobStream:
        """The committed blob's file from ``offset``."""
        path = self.store.layout.blob(desc.digest)
        return FileBlobStream(path, offset, what=f"blob {desc.digest} in store {self.store.root}")

    def close(self) -> None:
        """Let a prune run again."""
        self._hold.close()


@dataclass
class _Written:
    """The documents a copy into the store delivered, in order."""

    manifests: list[tuple[Manifest, Platform | None]]
    top: Document | None = None


class StoreDestination:
    """The local store as an :class:`~lorry.transports.ImageDestination`; ``ref`` is tagged."""

    def __init__(self, store: Store, ref: str | None, name: str) -> None:
        self.store = store
        self.reference: Reference | None = parse_docker_ref(ref) if ref else None
        if self.reference is not None and self.reference.digest:
            raise InvalidInputError(f"{name}: a local image is tagged, not named by digest")
        self._name = name
        self._written = _Written([])
        #: The images the commit created, in the order their manifests arrived.
        self.images: list[Image] = []
        self._hold = ExitStack()
        self._hold.enter_context(store.hold())

    @property
    def name(self) -> str:
        """The reference as the user wrote it."""
        return self._name

    @property
    def properties(self) -> DestinationProperties:
        """Every manifest and index type; reuse of present blobs; layers need DiffIDs."""
        return DestinationProperties(
            manifest_types=frozenset(mt.MANIFEST_TYPES + mt.INDEX_TYPES),
            reuse=frozenset({"present"}),
            needs_diff_ids=True,
        )

    def reuse_blob(self, desc: Descriptor) -> bool:
        """True when the store holds the blob already."""
        return self.store.content.exists(desc.digest)

    def put_blob(self, desc: Descriptor, open_at: BlobOpener) -> None:
        """Ingest the blob (resuming partial data; verified, DiffID computed, then visible)."""
        write_blob(
            self.store.content.writer(desc.digest, desc.size, media_type=desc.media_type), open_at
        )

    def put_manifest(
        self, raw: bytes, media_type: str, digest: Digest, *, top: bool = False
    ) -> None:
        """Keep the verified document; image manifests become images at commit."""
        if Digest.of(raw, digest.algorithm) != digest:
            raise IntegrityError(f"{self._name}: manifest {digest}: digest mismatch")
        doc = parse_manifest(raw, media_type)
        if isinstance(doc, Manifest):
            self._written.manifests.append((doc, None))
        if top:
            self._written.top = Document(raw, media_type)

    def commit(self) -> None:
        """Register layers, create every image, record documents, then move the tag."""
        top = self._written.top
        if top is None:
            raise InvalidInputError(f"{self._name}: commit before the top document")
        index = None if mt.is_manifest(top.media_type) else top
        platforms = _platforms(index) if index else {}
        for manifest, _ in self._written.manifests:
            docs = [Document(manifest.raw, manifest.media_type)]
            if index is not None:
                docs.append(index)
            self.images.append(self._image(manifest, docs))
        if self.reference is not None and self.images:
            chosen = self.images[0]
            if index is not None:
                wanted = [platforms.get(m.digest) for m, _ in self._written.manifests]
                order = ranked(Platform.host(), wanted)
                chosen = self.images[order[0] if order else 0]
            ref = self.reference
            self.store.refs.add_tag(ref.name, ref.tag or "latest", chosen.id)
        self._hold.close()

    def _image(self, manifest: Manifest, docs: list[Document]) -> Image:
        """Register the manifest's layer chain and create its image (checked against DiffIDs)."""
        raw = self.store.content.read_bytes(manifest.config.digest)
        config = diff_ids_of(parse_config(raw, f"image config {manifest.config.digest}"))
        parent = None
        got: list[DiffID] = []
        for layer in manifest.layers:
            registered = self.store.layers.register(
                layer.digest, parent, media_type=layer.media_type
            )
            parent = registered.chain_id
            got.append(registered.diff_id)
        if got != config:
            raise IntegrityError(
                f"{self._name}: layers of manifest {manifest.digest} don't match image "
                f"configuration {manifest.config.digest}"
            )
        return record_image(
            self.store, manifest.config.digest, docs, [], registry="", repository=""
        )

    def abort(self) -> None:
        """Nothing was tagged; complete blobs stay for the next attempt; let prune run."""
        self._hold.close()


def _platforms(index: Document) -> dict[Digest, Platform | None]:
    """The platform each entry of an index names."""
    doc = parse_manifest(index.raw, index.media_type)
    entries: list[Descriptor] = list(getattr(doc, "manifests", []))
    return {e.digest: e.platform for e in entries}
