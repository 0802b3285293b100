"""``copy``: one image (or index) from any :class:`ImageSource` to any :class:`ImageDestination`.

Pull (registry → store), push (store → registry), copy, save and load all run here:

1. resolve the source's top document and choose its images as pull always did
   (:func:`~lorry.ops.resolve.choose`): the host's platform by default, one platform,
   several (the index is rewritten to those entries: a new digest, said on the sink), or
   every entry with ``all_platforms`` (the index is then copied unchanged);
   every document fetched by digest is checked against that digest;
2. check, before any write, that the destination takes these documents as they are
   (``preserve_digests`` makes any change an error; lorry converts nothing yet);
3. the blobs. Into the store (a destination that registers layers), per image: the config,
   then the layer chain through the :class:`~lorry.transfer.DownloadManager`
   (:mod:`~lorry.ops.layer_chain`). Anywhere else: every distinct layer, then every config, as
   transfers of the :class:`~lorry.transfer.UploadManager` keyed by destination + digest
   (:class:`~lorry.ops.blob_move.BlobCopy`). Either way each blob is reused by the destination
   or moved by :class:`~lorry.ops.blob_move.BlobMove` — the one byte path;
4. child manifests, nested indexes, then the top document; then ``commit``. Any failure
   ``abort``\\ s the destination, which then shows nothing new.

:class:`Flow` is how pull and push keep their own words on the same engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import anyio.to_thread

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, NotFoundError, UnsupportedError
from lorry.oci import Descriptor, Index, Manifest
from lorry.ops.blob_move import COPY_WORDS, BlobCopy, Words
from lorry.ops.blocking import run_blocking
from lorry.ops.layer_chain import LayerDownloads, copy_layer_chains, download_manager
from lorry.ops.resolve import Resolved, choose, verify_top
from lorry.ops.session import SessionLease, SessionOptions, lease_session
from lorry.platform import Platform, ranked
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.registry.client import RegistrySession
from lorry.store import Store
from lorry.store.layers import MAX_DEPTH
from lorry.transfer import Limits, RetryPolicy, UploadManager
from lorry.transports import ImageDestination, ImageSource, parse_transport
from lorry.transports.registry import RegistrySource
from lorry.transports.store import StoreDestination

__all__ = [
    "CopyOptions",
    "CopyResult",
    "Flow",
    "copy",
    "copy_image",
    "copy_image_sync",
    "copy_resolved",
    "copy_sync",
    "resolve_source",
]


#: The most layers an image may have for a copy anywhere but the store (whose limit is
#: ``MAX_DEPTH``, docker's 125): checked before any blob is fetched, so a hostile manifest
#: costs nothing but its own bytes.
MAX_LAYERS = 1000


@dataclass(frozen=True)
class CopyOptions:
    """How a copy chooses and moves: platforms, digest policy, transfer limits and retries."""

    #: The images of an index to copy: none = the host's, one = that one, several = a subset
    #: (the index is rewritten, so its digest changes).
    platforms: tuple[Platform, ...] = ()
    all_platforms: bool = False
    preserve_digests: bool = False
    limits: Limits | None = None
    retry: RetryPolicy | None = None


@dataclass(frozen=True)
class CopyResult:
    """What a copy wrote: the top document's digest and media type, and every image manifest."""

    digest: Digest
    media_type: str
    size: int
    manifests: tuple[Digest, ...] = field(default=())


@dataclass(frozen=True)
class Flow:
    """What differs between the commands on the engine: words, line names, order, sessions.

    ``line_ids`` names a blob's progress line (push: the layer's DiffID; default: the blob
    digest); it runs in a worker thread. ``top_first`` lists each image's layers top→bottom
    (push's ``Preparing`` order). ``quiet_configs`` gives configs no progress line (docker
    shows none). ``lease`` is the registry session each transfer holds while it runs.
    """

    words: Words = COPY_WORDS
    line_ids: Callable[[Descriptor], str] | None = None
    top_first: bool = False
    quiet_configs: bool = False
    lease: SessionLease | None = None


class _CheckedDocs:
    """The source as a ManifestGetter whose documents fetched by digest are verified."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def get_manifest(self, ref: str | Digest) -> tuple[bytes, str, Digest]:
        raw, media_type, digest = self.source.get_manifest(ref)
        if isinstance(ref, Digest) and Digest.of(raw, ref.algorithm) != ref:
            raise IntegrityError(f"{self.source.name}: manifest {ref}: digest mismatch")
        return raw, media_type, digest


async def resolve_source(
    source: ImageSource, options: CopyOptions | None = None, sink: ProgressSink | None = None
) -> tuple[Resolved, bytes]:
    """Step 1: the source's top document and the images chosen from it (and its bytes)."""
    opts = options or CopyOptions()
    pinned = _pinned(source)
    raw, media_type, digest = await anyio.to_thread.run_sync(source.get_manifest, None)
    if pinned is not None:  # named by digest: checked before anything is parsed
        verify_top(raw, media_type, pinned)
        digest = pinned
    resolved: Resolved = await anyio.to_thread.run_sync(
        partial(
            choose,
            _CheckedDocs(source),
            raw,
            media_type,
            digest,
            source.name,
            platform=opts.platforms[0] if len(opts.platforms) == 1 else None,
            all_platforms=opts.all_platforms or len(opts.platforms) > 1,
            by_digest=pinned,
        )
    )
    if len(opts.platforms) > 1 and not opts.all_platforms and mt.is_index(resolved.media_type):
        resolved, raw = _subset(resolved, opts, source.name)
        (sink or NullSink()).emit(
            ProgressEvent(
                status=f"Rewrote index of {len(resolved.targets)} platforms: {resolved.digest}",
                is_message=True,
            )
        )
    return resolved, raw


def _pinned(source: ImageSource) -> Digest | None:
    """The digest a registry source's reference names, if it names one."""
    if isinstance(source, RegistrySource) and source.ref.digest:
        return Digest.parse(source.ref.digest)
    return None


async def copy_resolved(
    source: ImageSource,
    dest: ImageDestination,
    resolved: Resolved,
    raw: bytes,
    options: CopyOptions | None = None,
    *,
    sink: ProgressSink | None = None,
    flow: Flow | None = None,
    uploads: UploadManager[Descriptor] | None = None,
    downloads: LayerDownloads | None = None,
    commit: bool = True,
) -> CopyResult:
    """Steps 2–4 for what :func:`resolve_source` chose (see the module docstring).

    ``uploads`` / ``downloads`` are shared managers (one per process dedups concurrent
    moves); without them the copy runs its own with ``options.limits`` and ``options.retry``.
    """
    opts = options or CopyOptions()
    how = flow or Flow()
    out: ProgressSink = sink or NullSink()
    try:
        into_store = isinstance(dest, StoreDestination)
        _check_bounds(resolved, MAX_DEPTH if into_store else MAX_LAYERS, dest.name)
        plan = (
            _store_plan(resolved, raw)
            if into_store
            else _plan(resolved, raw, dest, opts, top_first=how.top_first)
        )
        async with AsyncExitStack() as stack:
            if isinstance(dest, StoreDestination):
                if downloads is None:
                    downloads = await stack.enter_async_context(
                        download_manager(dest.store, limits=opts.limits, retry=opts.retry)
                    )
                releases = await copy_layer_chains(
                    source,
                    dest,
                    resolved.targets,
                    downloads,
                    out,
                    limits=opts.limits,
                    lease=how.lease,
                )
                for release in releases:
                    stack.push_async_callback(release)
            else:
                if uploads is None:
                    uploads = await stack.enter_async_context(
                        UploadManager[Descriptor](limits=opts.limits, retry=opts.retry)
                    )
                await _move_blobs(
                    source, dest, plan, how, sink=out, uploads=uploads, limits=opts.limits
                )
            for doc_raw, doc_type, doc_digest in plan.children:
                await anyio.to_thread.run_sync(
                    partial(dest.put_manifest, doc_raw, doc_type, doc_digest)
                )
            top_raw, top_type, top_digest = plan.top
            await anyio.to_thread.run_sync(
                partial(dest.put_manifest, top_raw, top_type, top_digest, top=True)
            )
            if commit:
                await anyio.to_thread.run_sync(dest.commit)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(dest.abort)
        raise
    manifests = tuple(t.digest for t in resolved.targets)
    return CopyResult(top_digest, top_type, len(top_raw), manifests)


async def _move_blobs(
    source: ImageSource,
    dest: ImageDestination,
    plan: _Plan,
    how: Flow,
    *,
    sink: ProgressSink,
    uploads: UploadManager[Descriptor],
    limits: Limits | None,
) -> None:
    """Every layer, then every config, through the upload manager."""
    names = how.line_ids

    def line_ids() -> dict[Digest, str]:
        if names is None:
            return {}
        return {d.digest: names(d) for d in plan.layers}

    ids = await anyio.to_thread.run_sync(line_ids)

    def copies(descs: Sequence[Descriptor]) -> list[BlobCopy]:
        return [
            BlobCopy(source, dest, d, words=how.words, line_id=ids.get(d.digest), lease=how.lease)
            for d in descs
        ]

    if plan.layers:
        await uploads.upload(copies(plan.layers), sink, limits=limits)
    if plan.configs:
        quiet: ProgressSink = NullSink() if how.quiet_configs else sink
        await uploads.upload(copies(plan.configs), quiet, limits=limits)


async def copy_image(
    source: ImageSource,
    dest: ImageDestination,
    options: CopyOptions | None = None,
    *,
    sink: ProgressSink | None = None,
    flow: Flow | None = None,
    uploads: UploadManager[Descriptor] | None = None,
    downloads: LayerDownloads | None = None,
    commit: bool = True,
) -> CopyResult:
    """Copy the image ``source`` names to ``dest`` (see the module docstring).

    ``commit`` False leaves the destination open for another image (``save`` of several);
    the caller commits it. A failure aborts the destination either way.
    """
    try:
        resolved, raw = await resolve_source(source, options, sink)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(dest.abort)
        raise
    return await copy_resolved(
        source,
        dest,
        resolved,
        raw,
        options,
        sink=sink,
        flow=flow,
        uploads=uploads,
        downloads=downloads,
        commit=commit,
    )


async def copy(
    src: str,
    dst: str,
    options: CopyOptions | None = None,
    *,
    sink: ProgressSink | None = None,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
    store: Store | None = None,
) -> CopyResult:
    """Copy ``src`` to ``dst``, both transport references (``docker://``, ``oci:``, …).

    ``session`` is borrowed (never closed); without one, a session is opened with
    ``session_options`` for this copy. ``store`` is the local store ``lorry:`` names.
    """
    # Here, not at import: it loads every transport, and pull (which imports this module)
    # needs only the registry and the store.
    from lorry.ops.copy_endpoints import open_destination, open_source

    src_ref, dst_ref = parse_transport(src), parse_transport(dst)
    lease = lease_session(session, session_options)
    try:
        source = open_source(src_ref, lease.session, store)
        try:
            dest = open_destination(dst_ref, lease.session, src_ref, store)
            return await copy_image(source, dest, options, sink=sink, flow=Flow(lease=lease))
        finally:
            source.close()
    finally:
        lease.release()


def copy_sync(src: str, dst: str, options: CopyOptions | None = None, **kw: Any) -> CopyResult:
    """:func:`copy` for synchronous callers (see :func:`~lorry.ops.blocking.run_blocking`)."""
    return run_blocking(partial(copy, src, dst, options, **kw))


def copy_image_sync(
    source: ImageSource, dest: ImageDestination, options: CopyOptions | None = None, **kw: Any
) -> CopyResult:
    """:func:`copy_image` for synchronous callers (see :func:`~lorry.ops.blocking.run_blocking`)."""
    return run_blocking(partial(copy_image, source, dest, options, **kw))


@dataclass
class _Plan:
    """What goes to the destination: layers, configs, then children, then the top document."""

    layers: list[Descriptor]
    configs: list[Descriptor]
    children: list[tuple[bytes, str, Digest]]
    top: tuple[bytes, str, Digest]


def _subset(resolved: Resolved, opts: CopyOptions, name: str) -> tuple[Resolved, bytes]:
    """The index cut down to the best entry for each wanted platform (a new document)."""
    if opts.preserve_digests:
        raise UnsupportedError(
            f"{name}: --preserve-digests: a subset of platforms rewrites index {resolved.digest}"
        )
    if len(resolved.indexes) != 1:
        raise UnsupportedError(f"{name}: cannot take a subset of a nested index")
    top = resolved.indexes[0]
    chosen: list[int] = []
    for want in opts.platforms:
        order = ranked(want, [t.platform for t in resolved.targets])
        if not order:
            raise NotFoundError(f"{name}: index {top.digest} has no image for {want}")
        if order[0] not in chosen:
            chosen.append(order[0])
    keep = {resolved.targets[i].digest for i in chosen}
    index = Index.build(
        top.media_type,
        [d for d in top.manifests if d.digest in keep],
        top.annotations or None,
    )
    targets = tuple(t for t in resolved.targets if t.digest in keep)
    return Resolved(index.digest, index.media_type, targets, (index,)), index.raw


def _plan(
    resolved: Resolved, raw: bytes, dest: ImageDestination, opts: CopyOptions, *, top_first: bool
) -> _Plan:
    """Decide every write before the first one; refuse what the destination cannot take.

    Layers go bottom→top per image, or top→bottom with ``top_first``.
    """
    props = dest.properties
    several = opts.all_platforms or len(opts.platforms) > 1
    copy_index = several and mt.is_index(resolved.media_type)
    if copy_index and not props.accepts_index:
        raise UnsupportedError(
            f"{dest.name}: cannot hold an index ({resolved.digest}); copy one platform instead"
        )
    if not copy_index and mt.is_index(resolved.media_type) and opts.preserve_digests:
        raise UnsupportedError(
            f"{dest.name}: --preserve-digests: copying one image of index {resolved.digest} "
            "drops the index; use --all"
        )
    layers: dict[Digest, Descriptor] = {}
    configs: dict[Digest, Descriptor] = {}
    children: list[tuple[bytes, str, Digest]] = []
    for target in resolved.targets:
        manifest = target.manifest
        if not isinstance(manifest, Manifest):
            raise UnsupportedError(f"{target.digest}: lorry does not copy schema1 images")
        if target.media_type not in props.manifest_types:
            raise UnsupportedError(
                f"{dest.name}: does not take {target.media_type} manifests ({target.digest})"
            )
        for layer in reversed(manifest.layers) if top_first else manifest.layers:
            layers.setdefault(layer.digest, layer)
        configs.setdefault(manifest.config.digest, manifest.config)
        children.append((manifest.raw, target.media_type, target.digest))
    plan_configs = [c for d, c in configs.items() if d not in layers]
    if not copy_index:
        (top,) = children
        return _Plan(list(layers.values()), plan_configs, [], top)
    nested = [(ix.raw, ix.media_type, ix.digest) for ix in reversed(resolved.indexes[1:])]
    top = (raw, resolved.media_type, resolved.digest)
    return _Plan(list(layers.values()), plan_configs, children + nested, top)


def _check_bounds(resolved: Resolved, max_layers: int, name: str) -> None:
    """Refuse, before any blob is asked for, an image with more layers than ``name`` takes."""
    for target in resolved.targets:
        manifest = target.manifest
        count = len(manifest.layers if isinstance(manifest, Manifest) else manifest.fs_layers)
        if count > max_layers:
            raise UnsupportedError(
                f"manifest {target.digest}: {count} layers, more than the {max_layers} {name} takes"
            )


def _store_plan(resolved: Resolved, raw: bytes) -> _Plan:
    """The documents for the store: every chosen manifest, every index passed through, top.

    The store keeps each index an image was reached through (and the repo digest names the
    index), so an index is recorded even when only one of its images is copied.
    """
    children = [(t.manifest.raw, t.media_type, t.digest) for t in resolved.targets]
    if not resolved.indexes:
        (top,) = children
        return _Plan([], [], [], top)
    nested = [(ix.raw, ix.media_type, ix.digest) for ix in reversed(resolved.indexes[1:])]
    return _Plan([], [], children + nested, (raw, resolved.media_type, resolved.digest))
