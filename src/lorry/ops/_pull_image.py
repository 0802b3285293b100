"""Pull's image stage: one chosen manifest → config + layers in the store → an image row.

Schema2 and OCI: the config blob is fetched (verified, at most 8 MiB) and stored first; its
``rootfs.diff_ids`` must have one entry per manifest layer. If an image with that ID is already
in the store, nothing else is fetched (moby does the same). Otherwise the layers go to the
download manager bottom→top; each descriptor checks its computed DiffID against the config's
before the layer is registered, and the rootfs the store built must equal the config's, or
the pull fails and nothing is tagged. Schema1: the non-throwaway layers are pulled and the
config is built from the v1 history with the DiffIDs computed (:mod:`lorry.oci.schema1_config`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread

from lorry import mediatypes as mt
from lorry.digest import DiffID, Digest
from lorry.errors import IntegrityError, UnsupportedError
from lorry.oci import MAX_CONFIG_SIZE, Descriptor, ImageConfig, Manifest, Schema1Manifest
from lorry.oci.schema1_config import config_from_schema1, layers_to_fetch
from lorry.ops._pull_layers import FetchedLayer, LayerSource, RegistryLayer
from lorry.ops._pull_resolve import Target
from lorry.ops.session import SessionLease
from lorry.progress import NullSink, ProgressSink
from lorry.reference import Reference
from lorry.store import Image, Layer, Store
from lorry.transfer import DownloadManager, Limits
from lorry.transports.store_records import Document, record_image

__all__ = ["ImageJob", "pull_target"]


@dataclass(frozen=True)
class ImageJob:
    """Everything the image stage needs from the pull that runs it."""

    store: Store
    lease: SessionLease
    ref: Reference
    sink: ProgressSink
    downloads: DownloadManager[FetchedLayer, Layer]
    limits: Limits | None = None


async def pull_target(job: ImageJob, target: Target, documents: Sequence[Document]) -> Image:
    """Pull the image ``target`` describes; record it with ``documents``; return the image."""
    if isinstance(target.manifest, Schema1Manifest):
        return await _pull_schema1(job, target.manifest, documents)
    manifest = target.manifest
    _check_types(manifest)
    raw = await _fetch_config(job, manifest.config)
    config = ImageConfig.parse(raw, manifest.config.media_type)
    if len(config.diff_ids) != len(manifest.layers):
        raise IntegrityError(
            f"image {config.digest}: layers from manifest don't match image configuration "
            f"({len(manifest.layers)} layers, {len(config.diff_ids)} DiffIDs)"
        )
    expected = [DiffID(d) for d in config.diff_ids]
    if await anyio.to_thread.run_sync(job.store.images.find, config.digest) is not None:
        return await _record(job, config.digest, documents, [])
    blobs = [d.digest for d in manifest.layers]
    known = await anyio.to_thread.run_sync(_known_diff_ids, job.store, blobs)
    sources = [
        LayerSource(d.digest, d.media_type, d.size, d.urls, exp, k)
        for d, exp, k in zip(manifest.layers, expected, known, strict=True)
    ]
    return await _download_and_record(job, sources, expected, config.digest, documents)


async def _download_and_record(
    job: ImageJob,
    sources: Sequence[LayerSource],
    expected: Sequence[DiffID] | None,
    config_digest: Digest | None,
    documents: Sequence[Document],
    *,
    schema1: Schema1Manifest | None = None,
) -> Image:
    """Download the layers, check the rootfs, then create and record the image."""
    descs = [RegistryLayer(s, store=job.store, lease=job.lease, ref=job.ref) for s in sources]
    rootfs, release = await job.downloads.download([], descs, job.sink, limits=job.limits)
    try:
        if expected is not None and list(rootfs) != list(expected):
            raise IntegrityError(
                f"layers from manifest don't match image configuration {config_digest}"
            )
        if schema1 is not None:
            raw = config_from_schema1(schema1, rootfs)
            config_digest = await anyio.to_thread.run_sync(_put_config, job.store, raw)
        assert config_digest is not None
        pairs = list(zip(rootfs, [s.digest for s in sources], strict=True))
        return await _record(job, config_digest, documents, pairs)
    finally:
        await release()


async def _pull_schema1(
    job: ImageJob, manifest: Schema1Manifest, documents: Sequence[Document]
) -> Image:
    """Pull a schema1 image: its layers, then the config synthesised from the v1 history."""
    layers = layers_to_fetch(manifest)
    blobs = [x.digest for x in layers]
    known = await anyio.to_thread.run_sync(_known_diff_ids, job.store, blobs)
    sources = [
        LayerSource(x.digest, x.media_type, x.size, known_diff_id=k)
        for x, k in zip(layers, known, strict=True)
    ]
    return await _download_and_record(job, sources, None, None, documents, schema1=manifest)


def _check_types(manifest: Manifest) -> None:
    """Refuse what is not a container image: other config types, non-layer blobs."""
    if manifest.config.media_type not in (mt.OCI_CONFIG, mt.DOCKER_CONFIG):
        raise UnsupportedError(
            f"manifest {manifest.digest}: config media type {manifest.config.media_type} is "
            "not a container image config"
        )
    for layer in manifest.layers:
        if not mt.is_layer(layer.media_type):
            raise UnsupportedError(
                f"manifest {manifest.digest}: unsupported media type {layer.media_type} "
                f"of layer {layer.digest}"
            )


def _known_diff_ids(store: Store, blobs: Sequence[Digest]) -> list[DiffID | None]:
    """The DiffIDs the store computed for these blobs before (None where unknown)."""
    out: list[DiffID | None] = []
    for blob in blobs:
        found = store.distmeta.diff_id_of(blob)
        out.append(DiffID(found) if found is not None else None)
    return out


def _put_config(store: Store, raw: bytes) -> Digest:
    """Store a synthesised config; its digest is the image ID."""
    return store.content.put_bytes(raw, media_type=mt.DOCKER_CONFIG).digest


async def _record(
    job: ImageJob,
    config_digest: Digest,
    documents: Sequence[Document],
    pairs: Sequence[tuple[DiffID, Digest]],
) -> Image:
    """Create the image row and record its documents and layer metadata (in a thread)."""

    def run() -> Image:
        return record_image(
            job.store,
            config_digest,
            documents,
            pairs,
            registry=job.ref.registry,
            repository=job.ref.repository,
        )

    return await anyio.to_thread.run_sync(run)


async def _fetch_config(job: ImageJob, desc: Descriptor) -> bytes:
    """The verified config bytes: from the store if present, else from the registry."""
    if desc.size > MAX_CONFIG_SIZE:
        raise UnsupportedError(f"image config {desc.digest}: {desc.size} bytes is too large")
    client = job.lease.session.client_for(job.ref)

    def load() -> bytes:
        if job.store.content.exists(desc.digest):
            return job.store.content.read_bytes(desc.digest)
        with client.open_blob(desc.digest, size=desc.size, verify=True) as reader:
            data = reader.read(-1)
        job.store.content.put_bytes(data, media_type=desc.media_type, expected=desc.digest)
        return data

    async def attempt() -> bytes:
        return await anyio.to_thread.run_sync(load)

    try:
        # The layers' retry policy and clock: one retry rule for every fetch of a pull.
        return await job.downloads.retry.run(
            attempt,
            emit=NullSink().emit,  # the config has no progress line (docker shows none)
            line_id=desc.digest.short,
            what=f"fetching config {desc.digest}",
        )
    except IntegrityError as exc:
        raise IntegrityError(f"image config verification failed for digest {desc.digest}") from exc
