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

import logging
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Protocol

from lorry import mediatypes as mt
from lorry.digest import DiffID, Digest
from lorry.errors import IntegrityError, InvalidInputError
from lorry.oci import Descriptor, Manifest, Schema1Manifest, parse_manifest
from lorry.platform import Platform, ranked
from lorry.reference import Reference, parse_docker_ref
from lorry.store import Image, Store
from lorry.store.images import diff_ids_of, parse_config
from lorry.store.inspect import find_image
from lorry.transports.files import FileBlobStream, write_blob
from lorry.transports.protocols import BlobOpener, DestinationProperties, WaitHook
from lorry.transports.store_plan import PushPlan, plan_push
from lorry.transports.store_records import Document, record_image, record_refs

__all__ = ["StoreDestination", "StoreSource", "blob_is_sound"]

log = logging.getLogger(__name__)


def blob_is_sound(store: Store, desc: Descriptor) -> bool:
    """The stored blob has the descriptor's size and digest (re-hashed unless unchanged since
    last verified: :meth:`~lorry.store.content.LocalContentStore.is_sound`)."""
    return store.content.is_sound(desc.digest, desc.size)


class StoreSource:
    """A local image as an :class:`~lorry.transports.ImageSource`."""

    def __init__(self, store: Store, ref: str, name: str) -> None:
        self.store = store
        self.ref = ref
        self._name = name
        self._built: dict[Digest, tuple[bytes, str]] = {}
        #: What the last ``get_manifest(None)`` decided to send (:func:`plan_push`).
        self.plan: PushPlan | None = None
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
        plan = self.plan = plan_push(self.store, image_id, source)
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

    manifests: list[Manifest | Schema1Manifest] = field(default_factory=list)
    indexes: list[Document] = field(default_factory=list)
    platforms: dict[Digest, Platform | None] = field(default_factory=dict)
    top: tuple[Document, Digest] | None = None
    #: (DiffID, blob) bottom→top per manifest digest, as the engine registered them.
    rootfs: dict[Digest, list[tuple[DiffID, Digest]]] = field(default_factory=dict)


class StoreDestination:
    """The local store as an :class:`~lorry.transports.ImageDestination`; ``ref`` is tagged.

    ``pulled_from`` (a pull) names the registry reference the image came from: its name is
    tagged (``name:tag``, and ``name@digest`` with the top document's digest), and the layers'
    (DiffID, blob) pairs are recorded for that repository (docs/store.md). ``platform`` picks
    which image of an index the tag points at (default: this host's). ``verify_diff_ids``
    inflates each layer while it is written and checks its DiffID before it is registered;
    by default (False) a layer is verified by digest and size only, its DiffID taken from the
    config as a claim the store checks where it inflates the layer anyway (docs/decisions.md).
    """

    def __init__(
        self,
        store: Store,
        ref: str | None,
        name: str,
        *,
        pulled_from: Reference | None = None,
        platform: Platform | None = None,
        verify_diff_ids: bool = False,
    ) -> None:
        self.store = store
        self.verify_diff_ids = verify_diff_ids
        self.pulled_from = pulled_from
        self.reference: Reference | None = pulled_from or (parse_docker_ref(ref) if ref else None)
        if pulled_from is None and self.reference is not None and self.reference.digest:
            raise InvalidInputError(f"{name}: a local image is tagged, not named by digest")
        self.platform = platform
        self._name = name
        self._written = _Written()
        #: The images the commit created, in the order their manifests arrived.
        self.images: list[Image] = []
        #: The image the reference points at after the commit.
        self.tagged: Image | None = None
        #: After the commit: whether the reference changed (docker's "Downloaded newer image").
        self.updated = False
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
        """True when the store holds the blob, sound; a damaged copy is deleted to be fetched.

        Sound: the file has the descriptor's size and hashes to its digest — re-hashed only
        when the file changed since its bytes were last verified, so a pull of an image already
        in the store reads no layer again, yet a byte flipped on disk is found and fetched anew.
        """
        if not self.store.content.exists(desc.digest):
            return False
        if blob_is_sound(self.store, desc):
            return True
        log.warning("blob %s in store %s is damaged; fetching it again", desc.digest, self._name)
        self.store.content.delete(desc.digest)
        return False

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        """Ingest the blob (resuming partial data; verified, then visible; a layer's DiffID
        computed on the way only with ``verify_diff_ids``)."""
        writer = self.store.content.writer(
            desc.digest,
            desc.size,
            media_type=desc.media_type,
            on_wait=on_wait,
            diff_ids=self.verify_diff_ids,
        )
        write_blob(writer, open_at)

    # -- what the engine asks of a destination that registers layers -------------------------

    def has_image(self, manifest: Manifest) -> bool:
        """True when the manifest's image is in the store, no layer of it bad, every blob sound.

        With ``verify_diff_ids``, its layers must also be verified (else they are checked now,
        through the engine, as a first pull in that mode would).
        """
        image = self.store.images.find(manifest.config.digest)
        if image is None:
            return False
        for layer in self.store.layers.chain(image.top_layer):
            if layer.bad_diff_id is not None or (self.verify_diff_ids and not layer.verified):
                return False
        return all(self.reuse_blob(d) for d in [manifest.config, *manifest.layers])

    def known_diff_id(self, blob: Digest, claim: DiffID | None = None) -> DiffID | None:
        """The DiffID the store verified for ``blob``; else ``claim`` when a layer made from
        this blob is registered with it (a claim about these bytes the store already took)."""
        found = self.store.distmeta.diff_id_of(blob)
        if found is not None:
            return DiffID(found)
        if claim is not None and any(
            layer.diff_id == claim and layer.bad_diff_id is None
            for layer in self.store.layers.by_blob(blob)
        ):
            return claim
        return None

    def diff_id(self, desc: Descriptor) -> DiffID:
        """The DiffID the store computed for a committed layer blob."""
        found = self.store.content.layer_info(desc.digest, desc.media_type).diff_id
        assert found is not None
        return DiffID(found)

    def registered(self, manifest: Digest, rootfs: list[tuple[DiffID, Digest]]) -> None:
        """The engine registered this manifest's layer chain: (DiffID, blob) bottom→top."""
        self._written.rootfs[manifest] = rootfs

    # -- documents and commit -----------------------------------------------------------------

    def put_manifest(
        self, raw: bytes, media_type: str, digest: Digest, *, top: bool = False
    ) -> None:
        """Keep the verified document; image manifests become images at commit."""
        doc = parse_manifest(raw, media_type)
        if not isinstance(doc, Schema1Manifest) and Digest.of(raw, digest.algorithm) != digest:
            raise IntegrityError(f"{self._name}: manifest {digest}: digest mismatch")
        if isinstance(doc, Manifest | Schema1Manifest):
            self._written.manifests.append(doc)
        else:
            self._written.indexes.append(Document(raw, media_type))
            for entry in getattr(doc, "manifests", []):
                self._written.platforms.setdefault(entry.digest, entry.platform)
        if top:
            self._written.top = (Document(raw, media_type), digest)

    def commit(self) -> None:
        """Create every image, record its documents, then move the references."""
        written = self._written
        if written.top is None:
            raise InvalidInputError(f"{self._name}: commit before the top document")
        for manifest in written.manifests:
            docs = [Document(manifest.raw, manifest.media_type), *written.indexes]
            self.images.append(self._image(manifest, docs))
        if self.reference is not None and self.images:
            self.tagged = self.images[self._chosen()]
            self.updated = self._point(self.reference, self.tagged, *written.top)
        self._hold.close()

    def _chosen(self) -> int:
        """Which image the reference points at: the best for the wanted platform."""
        manifests = self._written.manifests
        if len(manifests) == 1:
            return 0
        wanted = [self._written.platforms.get(m.digest) for m in manifests]
        order = ranked(self.platform or Platform.host(), wanted)
        return order[0] if order else 0

    def _point(self, ref: Reference, image: Image, top: Document, digest: Digest) -> bool:
        """Move the tag (and, for a pull, the repo digest); True when the reference changed."""
        if self.pulled_from is None:
            return self.store.refs.add_tag(ref.name, ref.tag or "latest", image.id)
        return record_refs(
            self.store,
            ref.name,
            image.id,
            tag=None if ref.digest else (ref.tag or "latest"),
            digest=digest,
            digest_media_type=top.media_type,
        )

    def _image(self, manifest: Manifest | Schema1Manifest, docs: list[Document]) -> Image:
        """The manifest's image: layers registered and checked against the config's DiffIDs."""
        if isinstance(manifest, Schema1Manifest):
            from lorry.oci.schema1_config import config_from_schema1, layers_to_fetch

            pairs = self._rootfs(manifest, layers_to_fetch(manifest))
            raw = config_from_schema1(manifest, [d for d, _ in pairs])
            config = self.store.content.put_bytes(raw, media_type=mt.DOCKER_CONFIG).digest
            return self._record(config, docs, pairs)
        config = manifest.config.digest
        if manifest.digest not in self._written.rootfs and self.has_image(manifest):
            return self._record(config, docs, [])
        pairs = self._rootfs(manifest, manifest.layers)
        raw = self.store.content.read_bytes(config)
        claimed = diff_ids_of(parse_config(raw, f"image config {config}"))
        if [d for d, _ in pairs] != claimed:
            raise IntegrityError(
                f"{self._name}: layers of manifest {manifest.digest} don't match image "
                f"configuration {config}"
            )
        return self._record(config, docs, pairs)

    def _rootfs(
        self, manifest: Manifest | Schema1Manifest, layers: Sequence[_LayerBlob]
    ) -> list[tuple[DiffID, Digest]]:
        """(DiffID, blob) bottom→top: as the engine registered them, else registered here."""
        done = self._written.rootfs.get(manifest.digest)
        if done is not None:
            return done
        parent = None
        pairs: list[tuple[DiffID, Digest]] = []
        for layer in layers:
            got = self.store.layers.register(layer.digest, parent, media_type=layer.media_type)
            parent = got.chain_id
            pairs.append((got.diff_id, layer.digest))
        return pairs

    def _record(
        self, config: Digest, docs: list[Document], pairs: list[tuple[DiffID, Digest]]
    ) -> Image:
        origin = self.pulled_from
        return record_image(
            self.store,
            config,
            docs,
            pairs if origin is not None else [],
            registry=origin.registry if origin is not None else "",
            repository=origin.repository if origin is not None else "",
        )

    def abort(self) -> None:
        """Nothing was tagged; complete blobs stay for the next attempt; let prune run."""
        self._hold.close()


class _LayerBlob(Protocol):
    """A layer as a manifest lists it (an OCI descriptor or a schema1 blob)."""

    @property
    def digest(self) -> Digest: ...

    @property
    def media_type(self) -> str: ...
