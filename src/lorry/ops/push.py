"""``lorry push``: send a local image to a registry, keeping its digest (xfer-spec §3, §4.7).

Order of work, as Docker does it:

1. ``The push refers to repository [<name>]``;
2. every layer blob, under the :class:`~lorry.transfer.UploadManager` (5 at once by default,
   retried, deduplicated by registry + repository + digest), each skipped, mounted or uploaded
   from the store's original compressed bytes (:mod:`lorry.ops.push_layer`);
3. the config blob(s);
4. for an index, every child manifest by digest; then the manifest (or index) by tag, as the
   exact bytes recorded when the image was pulled (:mod:`lorry.transports.store_plan`);
5. ``<tag>: digest: sha256:… size: N`` and an aux event ``{"Tag", "Digest", "Size"}``.

The pushed repository is recorded in distribution metadata per layer, so the next push of
these layers to this repository skips them and a push to a sibling repository mounts them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread

from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import Descriptor
from lorry.ops._held import held
from lorry.ops.push_blob import BlobTarget, push_small_blob
from lorry.ops.push_layer import LayerPush
from lorry.ops.session import (
    SessionLease,
    SessionOptions,
    check_remote_reference,
    lease_session,
)
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.reference import Reference, familiar_match, parse
from lorry.registry.client import RegistrySession
from lorry.registry.uploads import DEFAULT_CHUNK_SIZE
from lorry.store import Store
from lorry.store.inspect import find_image
from lorry.store.references import Ref
from lorry.transfer import Limits, RetryPolicy, UploadManager
from lorry.transports.store_plan import PushPlan, plan_push

__all__ = ["PushResult", "push", "push_sync"]


@dataclass(frozen=True)
class PushResult:
    """What a push did: the manifest (or index) digest now under ``reference``, and its size."""

    manifest_digest: Digest
    size: int
    reference: Reference


def _target(src: str | Reference, dst: str | Reference | None, source: Ref | None) -> Reference:
    """The fully qualified name:tag the image goes to."""
    given = dst if dst is not None else src
    if dst is None and source is None:
        raise InvalidInputError(f"{src}: give a destination to push an image by ID")
    ref = given if isinstance(given, Reference) else parse(given)
    if ref.digest is not None:
        raise InvalidInputError(f"cannot push a digest reference: {given}")
    check_remote_reference(ref)
    if ref.tag is None:
        tag = source.tag if (dst is not None and source is not None and source.tag) else "latest"
        ref = ref.with_tag(tag)
    return ref


async def push(
    src: str | Reference,
    dst: str | Reference | None = None,
    *,
    store: Store,
    sink: ProgressSink | None = None,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
    limits: Limits | None = None,
    uploads: UploadManager[Descriptor] | None = None,
    retry: RetryPolicy | None = None,
    chunked: bool | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    allow_nondistributable: Sequence[str] = (),
) -> PushResult:
    """Push the local image ``src`` to ``dst`` (default: where ``src``'s name says).

    ``src`` is a local reference or image ID; a name without a tag means ``:latest``. ``dst``
    without a tag takes ``src``'s tag. ``session`` is borrowed (never closed); without one, a
    session is opened with ``session_options``. ``uploads`` is a shared upload manager (one per
    process dedups concurrent pushes); without one, the push runs its own with ``limits``
    and ``retry``. ``chunked``: None = monolithic PUT, falling back to chunks when the registry
    refuses it; True/False = always that form. ``allow_nondistributable`` lists registries
    (patterns as ``docker --allow-nondistributable-artifacts``) that may receive foreign layers.
    Returns the digest the registry now serves under the tag.
    """
    out: ProgressSink = sink or NullSink()
    image_id, source = await anyio.to_thread.run_sync(find_image, store, str(src))
    ref = _target(src, dst, source)
    async with held(store):
        plan = await anyio.to_thread.run_sync(plan_push, store, image_id, source)
        header = f"The push refers to repository [{ref.name}]"
        out.emit(ProgressEvent(status=header, is_message=True))
        lease = lease_session(session, session_options)
        try:
            client = lease.session.client_for(ref)
            target = BlobTarget(store, client, chunked, chunk_size)
            allow = _allowed(ref, allow_nondistributable)
            mounted = await _send_layers(
                plan,
                target,
                out,
                allow_foreign=allow,
                lease=lease,
                uploads=uploads,
                limits=limits,
                retry=retry,
            )
            digest = await _send_documents(plan, target, ref, mounted)
        finally:
            lease.release()
        await anyio.to_thread.run_sync(_remember, store, plan, image_id, ref, digest)
    size = len(plan.raw)
    out.emit(ProgressEvent(status=f"{ref.tag}: digest: {digest} size: {size}", is_message=True))
    out.emit(ProgressEvent(aux={"Tag": ref.tag, "Digest": str(digest), "Size": size}))
    return PushResult(digest, size, ref)


def _allowed(ref: Reference, patterns: Sequence[str]) -> bool:
    """Whether foreign layers may go to ``ref``'s registry."""
    return any(p in (ref.registry, "*") or familiar_match(p, ref) for p in patterns)


async def _send_layers(
    plan: PushPlan,
    target: BlobTarget,
    sink: ProgressSink,
    *,
    allow_foreign: bool,
    lease: SessionLease,
    uploads: UploadManager[Descriptor] | None,
    limits: Limits | None,
    retry: RetryPolicy | None,
) -> list[str]:
    """Make every layer blob exist in the target repository; return where mounts came from."""
    descs = [
        LayerPush(target, lb.desc, lb.diff_id, allow_foreign=allow_foreign, lease=lease)
        for lb in plan.layers
    ]
    if not descs:
        return []
    async with AsyncExitStack() as stack:
        if uploads is None:
            uploads = await stack.enter_async_context(
                UploadManager[Descriptor](limits=limits, retry=retry)
            )
        await uploads.upload(descs, sink, limits=limits)
    return list(dict.fromkeys(d.mounted_from for d in descs if d.mounted_from))


async def _send_documents(
    plan: PushPlan, target: BlobTarget, ref: Reference, mounted: list[str]
) -> Digest:
    """Configs first, then child manifests by digest, then the manifest or index by tag."""
    client = target.client
    for config in plan.configs:
        await anyio.to_thread.run_sync(push_small_blob, target, config, mounted)
    for child in plan.children:
        put = functools.partial(client.put_manifest, child.digest, child.raw, child.media_type)
        await anyio.to_thread.run_sync(put)
    assert ref.tag is not None
    return await anyio.to_thread.run_sync(client.put_manifest, ref.tag, plan.raw, plan.media_type)


def _remember(
    store: Store, plan: PushPlan, image_id: Digest, ref: Reference, digest: Digest
) -> None:
    """Record the pushed manifest (when built here) and the repo digest ``name@digest``."""
    if plan.built:
        store.content.put_bytes(plan.raw, media_type=plan.media_type, expected=plan.digest)
        store.images.add_manifest(image_id, plan.digest, plan.media_type)
    if store.refs.get(ref.name, digest=digest) is None:
        store.refs.add_digest(ref.name, digest, image_id)


def push_sync(
    src: str | Reference,
    dst: str | Reference | None = None,
    **options: Any,
) -> PushResult:
    """Blocking :func:`push` (runs its own event loop); same arguments."""
    run = functools.partial(push, src, dst, **options)
    return anyio.run(run, backend="asyncio")
