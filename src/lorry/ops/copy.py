"""``copy``: one image (or index) from any :class:`ImageSource` to any :class:`ImageDestination`.

The engine, in order (transports/protocols.py has the destination's side of it):

1. resolve the source's top document and choose its images as pull does
   (:func:`~lorry.ops._pull_resolve.choose`): the host's platform by default, one platform,
   several (the index is rewritten to those entries: a new digest, said on the sink), or
   every entry with ``all_platforms`` (the index is then copied unchanged);
   every document fetched by digest is checked against that digest;
2. check, before any write, that the destination takes these documents as they are
   (``preserve_digests`` makes any change an error; lorry converts nothing yet);
3. every distinct blob (layers, then configs) as one transfer of the
   :class:`~lorry.transfer.UploadManager` (limits, retries, stall watchdog, progress), keyed by
   destination + digest: the destination reuses it or writes it, reading the source through
   :class:`~lorry.ops.blob_stream.BlobFetch` (the one byte path);
4. child manifests, nested indexes, then the top document; then ``commit``. Any failure
   ``abort``\\ s the destination, which then shows nothing new.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack, closing
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from lorry import mediatypes as mt
from lorry.digest import DiffID, Digest
from lorry.errors import IntegrityError, NotFoundError, UnsupportedError
from lorry.oci import Descriptor, Index, Manifest
from lorry.ops._pull_resolve import Resolved, choose
from lorry.ops.blob_stream import BlobFetch, Emit, thread_emitter
from lorry.ops.copy_endpoints import open_destination, open_source
from lorry.ops.session import SessionOptions, lease_session
from lorry.platform import Platform, ranked
from lorry.progress import ByteThrottle, NullSink, ProgressEvent, ProgressSink
from lorry.registry.client import RegistrySession
from lorry.store import Store
from lorry.transfer import Limits, RetryPolicy, TransferProgress, UploadManager, statuses
from lorry.transports import ImageDestination, ImageSource, parse_transport

__all__ = ["CopyOptions", "CopyResult", "copy", "copy_image", "copy_image_sync", "copy_sync"]


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


class _CheckedDocs:
    """The source as a ManifestGetter whose documents fetched by digest are verified."""

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def get_manifest(self, ref: str | Digest) -> tuple[bytes, str, Digest]:
        raw, media_type, digest = self.source.get_manifest(ref)
        if isinstance(ref, Digest) and Digest.of(raw, ref.algorithm) != ref:
            raise IntegrityError(f"{self.source.name}: manifest {ref}: digest mismatch")
        return raw, media_type, digest


class BlobCopy:
    """One blob from the source to the destination: an UploadDescriptor of the engine."""

    def __init__(self, source: ImageSource, dest: ImageDestination, desc: Descriptor) -> None:
        self.source = source
        self.dest = dest
        self.desc = desc
        self._fetches: list[BlobFetch] = []
        self._lock = threading.Lock()

    def key(self) -> str:
        """Destination + digest: two copies of a blob to one place share one transfer."""
        return f"copy:{self.dest.name}@{self.desc.digest}"

    def id(self) -> str:
        """The blob digest's 12 hex characters."""
        return self.desc.digest.short

    def diff_id(self) -> DiffID:
        """Progress lines are named by blob digest here (no DiffID is needed to copy)."""
        return DiffID(self.desc.digest)

    def close(self) -> None:
        """Cut any stream an abandoned attempt still reads."""
        self._abort()

    async def upload(self, progress: TransferProgress) -> Descriptor:
        """Reuse the blob at the destination, or stream it there (in a worker thread)."""
        emit = thread_emitter(progress)
        try:
            status = await anyio.to_thread.run_sync(self._run, emit, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            self._abort()
            raise
        progress.emit(ProgressEvent(self.id(), status))
        return self.desc

    def _run(self, emit: Emit) -> str:
        if self.dest.reuse_blob(self.desc):
            return statuses.LAYER_ALREADY_EXISTS
        self.dest.put_blob(self.desc, partial(self._chunks, emit))
        return statuses.COPIED

    def _chunks(self, emit: Emit, offset: int) -> Iterator[bytes]:
        """The source blob from ``offset``, reporting ``Copying`` progress as it goes."""
        desc = self.desc
        fetch = BlobFetch(
            lambda at: self.source.open_blob(desc, at),
            size=desc.size,
            check=anyio.from_thread.check_cancelled,
        )
        with self._lock:
            self._fetches.append(fetch)
        throttle = ByteThrottle(desc.size, offset)
        done = offset
        emit(ProgressEvent(self.id(), statuses.COPYING, done, desc.size))
        with closing(fetch.chunks(offset)) as chunks:
            for chunk in chunks:
                done += len(chunk)
                if throttle.due(done):
                    emit(ProgressEvent(self.id(), statuses.COPYING, done, desc.size))
                yield chunk

    def _abort(self) -> None:
        with self._lock:
            for fetch in self._fetches:
                fetch.abort()


async def copy_image(
    source: ImageSource,
    dest: ImageDestination,
    options: CopyOptions | None = None,
    *,
    sink: ProgressSink | None = None,
    uploads: UploadManager[Descriptor] | None = None,
    commit: bool = True,
) -> CopyResult:
    """Copy the image ``source`` names to ``dest`` (see the module docstring).

    ``commit`` False leaves the destination open for another image (``save`` of several);
    the caller commits it. A failure aborts the destination either way.
    """
    opts = options or CopyOptions()
    out: ProgressSink = sink or NullSink()
    docs = _CheckedDocs(source)
    raw, media_type, digest = await anyio.to_thread.run_sync(source.get_manifest, None)
    resolved: Resolved = await anyio.to_thread.run_sync(
        partial(
            choose,
            docs,
            raw,
            media_type,
            digest,
            source.name,
            platform=opts.platforms[0] if len(opts.platforms) == 1 else None,
            all_platforms=opts.all_platforms or len(opts.platforms) > 1,
        )
    )
    if len(opts.platforms) > 1 and not opts.all_platforms and mt.is_index(resolved.media_type):
        resolved, raw = _subset(resolved, opts, source.name)
        out.emit(
            ProgressEvent(
                status=f"Rewrote index of {len(resolved.targets)} platforms: {resolved.digest}",
                is_message=True,
            )
        )
    plan = _plan(resolved, raw, dest, opts)
    try:
        async with AsyncExitStack() as stack:
            if uploads is None:
                uploads = await stack.enter_async_context(
                    UploadManager[Descriptor](limits=opts.limits, retry=opts.retry)
                )
            blobs = [BlobCopy(source, dest, d) for d in plan.blobs]
            await uploads.upload(blobs, out, limits=opts.limits)
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
    src_ref, dst_ref = parse_transport(src), parse_transport(dst)
    lease = lease_session(session, session_options)
    try:
        source = open_source(src_ref, lease.session, store)
        try:
            dest = open_destination(dst_ref, lease.session, src_ref, store)
            return await copy_image(source, dest, options, sink=sink)
        finally:
            source.close()
    finally:
        lease.release()


def copy_sync(src: str, dst: str, options: CopyOptions | None = None, **kw: Any) -> CopyResult:
    """:func:`copy` for synchronous callers (runs its own event loop)."""
    return anyio.run(partial(copy, src, dst, options, **kw))


def copy_image_sync(
    source: ImageSource, dest: ImageDestination, options: CopyOptions | None = None, **kw: Any
) -> CopyResult:
    """:func:`copy_image` for synchronous callers (runs its own event loop)."""
    return anyio.run(partial(copy_image, source, dest, options, **kw))


@dataclass
class _Plan:
    """What goes to the destination: blobs, then children, then the top document."""

    blobs: list[Descriptor]
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


def _plan(resolved: Resolved, raw: bytes, dest: ImageDestination, opts: CopyOptions) -> _Plan:
    """Decide every write before the first one; refuse what the destination cannot take."""
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
    blobs: dict[Digest, Descriptor] = {}
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
        for layer in manifest.layers:
            blobs.setdefault(layer.digest, layer)
        configs.setdefault(manifest.config.digest, manifest.config)
        children.append((manifest.raw, target.media_type, target.digest))
    ordered = list(blobs.values()) + [c for d, c in configs.items() if d not in blobs]
    if not copy_index:
        (top,) = children
        return _Plan(ordered, [], top)
    nested = [(ix.raw, ix.media_type, ix.digest) for ix in reversed(resolved.indexes[1:])]
    return _Plan(ordered, children + nested, (raw, resolved.media_type, resolved.digest))
