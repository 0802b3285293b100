"""What a push sends for a local image: which manifest bytes, which configs, which layer blobs.

Digests must not change (DESIGN.md §1): an image that came from a registry is pushed as the
exact manifest bytes recorded for it (``images.add_manifest``), so the pushed digest is the
pulled one. A multi-platform image pulled with every platform has its index recorded too; when
every child manifest, config and layer blob of that index is in the store, the index is pushed
with all its children. An image with no recorded manifest (built locally) gets one built
deterministically from its layer chain with :meth:`lorry.oci.Manifest.build`.

Everything here reads the store and blocks; the push runs it in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, InvalidInputError, NotFoundError, UnsupportedError
from lorry.oci import Descriptor, Index, Manifest
from lorry.store import Store
from lorry.store.references import Ref

__all__ = ["LayerBlob", "PushPlan", "build_manifest", "plan_push"]


@dataclass(frozen=True)
class LayerBlob:
    """One layer blob to make exist remotely, with the DiffID the store computed for it."""

    desc: Descriptor
    diff_id: Digest | None


@dataclass
class PushPlan:
    """The documents and blobs of one push, in the order they must reach the registry.

    ``layers`` top→bottom per image (the order of the ``Preparing`` lines), ``configs`` before
    any manifest, then ``children`` by digest (for an index), then ``raw`` by tag.
    """

    raw: bytes
    media_type: str
    digest: Digest
    layers: list[LayerBlob] = field(default_factory=list)
    configs: list[Descriptor] = field(default_factory=list)
    children: list[Manifest] = field(default_factory=list)
    #: True when ``raw`` was built here (no manifest was recorded for the image).
    built: bool = False


def _is_image_manifest(media_type: str) -> bool:
    return media_type in (mt.DOCKER_MANIFEST_V2, mt.OCI_MANIFEST)


def _layer_blobs(store: Store, manifest: Manifest) -> list[LayerBlob] | None:
    """The manifest's layers top→bottom with DiffIDs; None when a blob is not in the store."""
    out: list[LayerBlob] = []
    for desc in reversed(manifest.layers):
        if not store.content.exists(desc.digest):
            if mt.is_foreign_layer(desc.media_type):
                out.append(LayerBlob(desc, None))  # never pushed without its bytes: skipped
                continue
            return None
        diff: Digest | None = None
        if mt.is_layer(desc.media_type):
            diff = store.content.layer_info(desc.digest, desc.media_type).diff_id
        out.append(LayerBlob(desc, diff))
    return out


def _document(store: Store, digest: Digest) -> bytes:
    """A recorded document's bytes, checked: a damaged one is an error, never replaced."""
    raw = store.content.read_bytes(digest)
    if Digest.of(raw, digest.algorithm) != digest:
        raise IntegrityError(
            f"stored manifest {digest} in store {store.root} is damaged (its bytes hash to "
            f"{Digest.of(raw, digest.algorithm)}); pull the image again"
        )
    return raw


def _manifest_plan(store: Store, digest: Digest, media_type: str) -> PushPlan | None:
    """A plan for a recorded image manifest; None when its blobs are not all in the store."""
    manifest = Manifest.parse(_document(store, digest), media_type)
    layers = _layer_blobs(store, manifest)
    if layers is None or not store.content.exists(manifest.config.digest):
        return None
    return PushPlan(manifest.raw, manifest.media_type, manifest.digest, layers, [manifest.config])


def _index_plan(store: Store, digest: Digest, media_type: str) -> PushPlan | None:
    """A plan for a recorded index: every child must be complete in the store, else None."""
    if not store.content.exists(digest):
        return None
    index = Index.parse(_document(store, digest), media_type)
    plan = PushPlan(index.raw, index.media_type, index.digest)
    for child in index.manifests:
        if not _is_image_manifest(child.media_type) or not store.content.exists(child.digest):
            return None
        sub = _manifest_plan(store, child.digest, child.media_type)
        if sub is None:
            return None
        plan.layers.extend(sub.layers)
        plan.configs.extend(c for c in sub.configs if c not in plan.configs)
        plan.children.append(Manifest.parse(sub.raw, sub.media_type))
    return plan if plan.children else None


def build_manifest(store: Store, image_id: Digest) -> Manifest:
    """A manifest for an image that has none recorded, built deterministically from the store.

    Docker schema2 when the config or any layer has a Docker media type, else OCI.
    """
    image = store.images.get(image_id)
    chain = store.layers.chain(image.top_layer)
    info = store.content.info(image_id)
    docker = info.media_type == mt.DOCKER_CONFIG or any(
        layer.media_type.startswith("application/vnd.docker.") for layer in chain
    )
    config_type = info.media_type or (mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG)
    return Manifest.build(
        mt.DOCKER_MANIFEST_V2 if docker else mt.OCI_MANIFEST,
        Descriptor(config_type, image_id, info.size),
        [Descriptor(layer.media_type, layer.blob_digest, layer.blob_size) for layer in chain],
    )


def _ranked(recorded: list[tuple[Digest, str]], preferred: set[Digest]) -> list[tuple[Digest, str]]:
    """Recorded documents: preferred digests first, indexes before manifests, then by digest."""
    return sorted(recorded, key=lambda r: (r[0] not in preferred, not mt.is_index(r[1]), str(r[0])))


def plan_push(store: Store, image_id: Digest, source: Ref | None = None) -> PushPlan:
    """Decide what pushing the local image ``image_id`` sends.

    ``source`` is the reference the user named; the digests it (or its repository's digest
    references) points at are preferred, so ``push name@sha256:…`` sends exactly that.
    """
    preferred: set[Digest] = set()
    if source is not None:
        preferred = {
            r.digest
            for r in store.refs.for_image(image_id)
            if r.digest is not None and (r.name == source.name or r.digest == source.digest)
        }
        if source.digest is not None:
            preferred = {source.digest}
    for digest, media_type in _ranked(store.images.manifests(image_id), preferred):
        try:
            if mt.is_index(media_type):
                plan = _index_plan(store, digest, media_type)
            elif _is_image_manifest(media_type):
                plan = _manifest_plan(store, digest, media_type)
            else:
                continue
        except (InvalidInputError, UnsupportedError, NotFoundError):
            continue  # not a document we can resend as it is: try the next one
        if plan is not None and (plan.children or plan.configs[0].digest == image_id):
            return plan
    return _built_plan(store, image_id)


def _built_plan(store: Store, image_id: Digest) -> PushPlan:
    """The plan of an image with no usable recorded manifest."""
    manifest = build_manifest(store, image_id)
    layers = _layer_blobs(store, manifest)
    if layers is None:
        raise NotFoundError(f"image {image_id}: a layer blob is missing from the store")
    plan = PushPlan(manifest.raw, manifest.media_type, manifest.digest, layers, [manifest.config])
    plan.built = True
    return plan
