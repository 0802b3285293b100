"""The copy engine's blob stage for the store: configs, then layer chains, as pull needs them.

A destination that registers layers (the store) needs more than blobs: each image's config is
fetched first (verified, at most 8 MiB, through the transfer's retry policy and clock) and its
``rootfs.diff_ids`` must list one entry per layer; an image already in the store needs no
layer at all (moby does the same). The layers then go to the shared
:class:`~lorry.transfer.DownloadManager` bottom→top as :class:`LayerCopy` descriptors
(``Already exists`` by ChainID, one fetch per blob across every pull of the process, limits,
retries, the stall watchdog); each moves its blob with :class:`~lorry.ops.blob_move.BlobMove`
(the one byte path) and checks the DiffID the store computed against the config's before the
layer is registered. Schema1 images have no config: their layers are fetched and the
destination builds the config from the v1 history at commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import anyio
import anyio.to_thread

from lorry import mediatypes as mt
from lorry.digest import ChainID, DiffID, Digest
from lorry.errors import IntegrityError, NotFoundError, UnsupportedError
from lorry.oci import MAX_CONFIG_SIZE, Descriptor, ImageConfig, Manifest, Schema1Manifest
from lorry.ops.blob_move import PULL_WORDS, BlobMove
from lorry.ops.resolve import Target
from lorry.ops.session import SessionLease
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.store import Layer, Store
from lorry.transfer import DEFAULT_STALL_TIMEOUT, DownloadManager, Limits, RetryPolicy
from lorry.transfer.download import LayerRelease
from lorry.transfer.protocols import ExtractProgress, TransferProgress, blob_key
from lorry.transports import ImageSource
from lorry.transports.registry import RegistrySource
from lorry.transports.store import StoreDestination, blob_is_sound

__all__ = [
    "FetchedLayer",
    "LayerCopy",
    "LayerDownloads",
    "StoreLayers",
    "copy_layer_chains",
    "download_manager",
]


@dataclass(frozen=True, slots=True)
class FetchedLayer:
    """The handle a finished download hands to the layer store: a committed, verified blob."""

    digest: Digest
    media_type: str
    size: int
    diff_id: DiffID
    #: False when ``diff_id`` is the config's claim (the blob was not inflated).
    verified: bool = True


#: The download manager of copies into the store.
LayerDownloads = DownloadManager[FetchedLayer, Layer]


class LayerCopy:
    """One layer blob into the store: a :class:`~lorry.transfer.DownloadDescriptor`."""

    def __init__(
        self,
        move: BlobMove,
        dest: StoreDestination,
        *,
        expected: DiffID | None,
        known: DiffID | None,
        lease: SessionLease | None = None,
    ) -> None:
        if lease is not None:
            lease.acquire()  # a shared download may outlive the pull that started it
        self.move = move
        self.dest = dest
        self.desc = move.desc
        self.expected = expected
        self.known = known
        self._lease = lease
        self._closed = False
        #: The DiffID the layer store reported (set by :meth:`registered`).
        self.registered_diff_id: DiffID | None = None

    def key(self) -> str:
        """The blob's dedup key: every pull in the process shares one fetch of it."""
        return blob_key(self.desc.digest)

    def id(self) -> str:
        """The 12-hex display id of the blob."""
        return self.desc.digest.short

    def diff_id(self) -> DiffID | None:
        """The DiffID to look for an existing layer by: one the store verified for this blob,
        or the config's claim when the store already holds a layer made from this blob with
        that DiffID (the layer store then reuses only a layer of this very blob)."""
        return self.known

    def registered(self, diff_id: DiffID) -> None:
        """Remember the layer's DiffID."""
        self.registered_diff_id = diff_id

    def close(self) -> None:
        """Cut an abandoned stream; give back the registry session (once)."""
        self.move.abort()
        if not self._closed:
            self._closed = True
            if self._lease is not None:
                self._lease.release()

    async def download(self, progress: TransferProgress) -> FetchedLayer:
        """Move the blob into the store, then check its DiffID against the config's.

        Without the destination's ``verify_diff_ids`` the blob is checked by digest and size
        only and the config's DiffID handed on as a claim (schema1 has no config: its DiffIDs
        are always computed).
        """
        await self.move.run(progress)
        if self.expected is not None and not self.dest.verify_diff_ids:
            d = self.desc
            return FetchedLayer(d.digest, d.media_type, d.size, self.expected, verified=False)
        diff = await anyio.to_thread.run_sync(self.dest.diff_id, self.desc)
        if self.expected is not None and diff != self.expected:
            raise IntegrityError(
                f"layer blob {self.desc.digest}: its DiffID {diff} does not match the image "
                f"configuration's {self.expected}"
            )
        return FetchedLayer(self.desc.digest, self.desc.media_type, self.desc.size, diff)


class StoreLayers:
    """The local layer store as the download manager's :class:`LayerStoreLike`.

    The store keeps persistent reference counts (child layers and images), not in-memory
    handles: a running copy keeps its layers from ``prune`` with :meth:`Store.hold`, so
    ``release`` has nothing to do. ``on_layer`` hears, in a worker thread, every layer this
    copy may build on as soon as it is known: found sound ("Already exists") or registered —
    how an unpack applies the bottom layers while the ones above are still fetched.
    """

    def __init__(self, store: Store, on_layer: Callable[[Layer], None] | None = None) -> None:
        self.store = store
        self._on_layer = on_layer

    async def get(self, chain_id: ChainID, key: str) -> Layer | None:
        """The layer with this ChainID, if it may stand for the blob ``key`` names, sound.

        It may when it is made from that very blob (whatever a config claimed, the bytes are
        the ones the manifest names), or when it is verified and the store verified that blob
        to the same DiffID. Never a bad layer, nor one whose DiffID is a claim about other
        bytes: a config that lies cannot borrow another image's layer. A layer whose blob was
        deleted or damaged is not "Already exists": it is fetched again.
        """

        def find() -> Layer | None:
            layer = self.store.layers.find(chain_id)
            if layer is None or layer.bad_diff_id is not None:
                return None
            if blob_key(layer.blob_digest) != key:
                wanted = Digest.parse(key.removeprefix("blob:"))
                if not layer.verified or self.store.distmeta.diff_id_of(wanted) != layer.diff_id:
                    return None
            desc = Descriptor(layer.media_type, layer.blob_digest, layer.blob_size)
            if not blob_is_sound(self.store, desc):
                return None
            if self._on_layer is not None:
                self._on_layer(layer)
            return layer

        return await anyio.to_thread.run_sync(find)

    async def register(
        self, handle: FetchedLayer, parent: ChainID | None, progress: ExtractProgress
    ) -> Layer:
        """Register the committed blob on top of ``parent`` (its DiffID is already known)."""

        def register() -> Layer:
            claim = None if handle.verified else handle.diff_id
            layer = self.store.layers.register(
                handle.digest, parent, media_type=handle.media_type, claimed=claim
            )
            if self._on_layer is not None:
                self._on_layer(layer)
            return layer

        layer = await anyio.to_thread.run_sync(register)
        progress(handle.size, handle.size)
        return layer

    async def release(self, layer: Layer) -> None:
        """Nothing to drop: see the class docstring."""


def download_manager(
    store: Store,
    *,
    limits: Limits | None = None,
    retry: RetryPolicy | None = None,
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
    on_layer: Callable[[Layer], None] | None = None,
) -> LayerDownloads:
    """A download manager for copies into ``store``; share one (``async with``) between pulls.

    ``on_layer``: see :class:`StoreLayers` (give such a manager to one copy only).
    """
    return DownloadManager(
        StoreLayers(store, on_layer), limits=limits, retry=retry, stall_timeout=stall_timeout
    )


class _Quiet:
    """A TransferProgress that shows nothing (docker shows no line for a config)."""

    def emit(self, event: ProgressEvent) -> None:
        """Drop the event."""

    @contextmanager
    def exempt(self) -> Iterator[None]:
        """No watchdog to exempt from."""
        yield


async def copy_layer_chains(
    source: ImageSource,
    dest: StoreDestination,
    targets: Sequence[Target],
    downloads: LayerDownloads,
    sink: ProgressSink,
    *,
    limits: Limits | None = None,
    lease: SessionLease | None = None,
) -> list[LayerRelease[Layer]]:
    """Config and layers of every target into the store; the caller releases the handles."""
    releases: list[LayerRelease[Layer]] = []
    try:
        for target in targets:
            release = await _one_image(
                source, dest, target, downloads, sink=sink, limits=limits, lease=lease
            )
            if release is not None:
                releases.append(release)
    except BaseException:
        with anyio.CancelScope(shield=True):
            for release in releases:
                await release()
        raise
    return releases


async def _one_image(
    source: ImageSource,
    dest: StoreDestination,
    target: Target,
    downloads: LayerDownloads,
    *,
    sink: ProgressSink,
    limits: Limits | None,
    lease: SessionLease | None,
) -> LayerRelease[Layer] | None:
    if isinstance(target.manifest, Schema1Manifest):
        layers = await anyio.to_thread.run_sync(_schema1_layers, source, target.manifest)
        expected: list[DiffID | None] = [None] * len(layers)
        claimed: list[DiffID] | None = None
    else:
        manifest = target.manifest
        _check_types(manifest)
        config = await _fetch_config(source, dest, manifest.config, downloads.retry)
        if len(config.diff_ids) != len(manifest.layers):
            raise IntegrityError(
                f"image {config.digest}: layers from manifest don't match image configuration "
                f"({len(manifest.layers)} layers, {len(config.diff_ids)} DiffIDs)"
            )
        if await anyio.to_thread.run_sync(dest.has_image, manifest):
            return None
        layers = list(manifest.layers)
        claimed = [DiffID(d) for d in config.diff_ids]
        expected = list(claimed)

    def known() -> list[DiffID | None]:
        return [
            dest.known_diff_id(d.digest, claim) for d, claim in zip(layers, expected, strict=True)
        ]

    descs = [
        LayerCopy(
            BlobMove(source, dest, d, words=PULL_WORDS), dest, expected=exp, known=k, lease=lease
        )
        for d, exp, k in zip(layers, expected, await anyio.to_thread.run_sync(known), strict=True)
    ]
    rootfs, release = await downloads.download([], descs, sink, limits=limits)
    try:
        if claimed is not None and list(rootfs) != claimed:
            raise IntegrityError(
                f"layers from manifest don't match image configuration {target.digest}"
            )
        dest.registered(target.digest, list(zip(rootfs, [d.digest for d in layers], strict=True)))
    except BaseException:
        with anyio.CancelScope(shield=True):
            await release()
        raise
    return release


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


def _schema1_layers(source: ImageSource, manifest: Schema1Manifest) -> list[Descriptor]:
    """Descriptors of a schema1 image's layers; schema1 gives no sizes, so each is asked."""
    from lorry.oci.schema1_config import layers_to_fetch  # schema1 only (start-up time)

    if not isinstance(source, RegistrySource):
        raise UnsupportedError(f"{source.name}: schema1 images come only from registries")
    out: list[Descriptor] = []
    for layer in layers_to_fetch(manifest):
        size = source.client.stat_blob(layer.digest)
        if size is None:
            raise NotFoundError(f"{source.name}: layer blob {layer.digest} not found")
        out.append(Descriptor(layer.media_type, layer.digest, size))
    return out


async def _fetch_config(
    source: ImageSource, dest: StoreDestination, desc: Descriptor, retry: RetryPolicy
) -> ImageConfig:
    """The verified, parsed config: moved into the store like any blob, then read back."""
    if desc.size > MAX_CONFIG_SIZE:
        raise UnsupportedError(f"image config {desc.digest}: {desc.size} bytes is too large")
    move = BlobMove(source, dest, desc, words=PULL_WORDS)

    async def attempt() -> bytes:
        await move.run(_Quiet())
        return await anyio.to_thread.run_sync(dest.store.content.read_bytes, desc.digest)

    try:
        # The layers' retry policy and clock: one retry rule for every fetch of a pull.
        raw = await retry.run(
            attempt,
            emit=NullSink().emit,  # the config has no progress line (docker shows none)
            line_id=desc.digest.short,
            what=f"fetching config {desc.digest}",
        )
    except IntegrityError as exc:
        raise IntegrityError(f"image config verification failed for digest {desc.digest}") from exc
    return ImageConfig.parse(raw, desc.media_type)
