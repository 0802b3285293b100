"""``lorry push``: a local image to a registry, as a copy on the one engine (xfer-spec §3, §4.7).

A push is ``copy(the store → docker://REF)`` (:mod:`lorry.ops.copy`) with docker's words:

1. ``The push refers to repository [<name>]``;
2. every layer blob (top→bottom, ``Preparing``), under the
   :class:`~lorry.transfer.UploadManager` (5 at once by default, retried, deduplicated by
   registry + repository + digest): skipped when the repository has it, mounted from another
   repository the store's distribution metadata names
   (:class:`~lorry.transports.store_memory.StoreBlobMemory`), else uploaded from the store's
   original compressed bytes — read through the verifying reader, so a damaged stored blob
   never reaches the registry whole;
3. the config blob(s), silently (mounted from where the layers were, when they were);
4. for an index, every child manifest by digest; then the manifest (or index) by tag, as the
   exact bytes recorded when the image was pulled (:mod:`lorry.transports.store_plan`);
5. ``<tag>: digest: sha256:… size: N`` and an aux event ``{"Tag", "Digest", "Size"}``.

A large layer goes up in chunks whose session is saved under ``<root>/uploads``, so a push
killed mid-layer continues that upload next time from where the registry stands.

The pushed repository is recorded in distribution metadata per layer, so the next push of
these layers to this repository skips them and a push to a sibling repository mounts them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread

from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import Descriptor
from lorry.ops._held import held
from lorry.ops.blob_move import PUSH_WORDS
from lorry.ops.copy import CopyOptions, Flow, copy_image
from lorry.ops.session import SessionOptions, check_remote_reference, lease_session
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.reference import Reference, familiar_match, parse
from lorry.registry.client import RegistrySession
from lorry.registry.uploads import DEFAULT_CHUNK_SIZE
from lorry.store import Store
from lorry.store.inspect import find_image
from lorry.store.references import Ref
from lorry.transfer import Limits, RetryPolicy, UploadManager
from lorry.transports.registry import RegistryDestination
from lorry.transports.store import StoreSource
from lorry.transports.store_memory import StoreBlobMemory
from lorry.transports.store_plan import PushPlan
from lorry.transports.upload_state import UploadStates

__all__ = ["UPLOADS_DIR", "PushOptions", "PushResult", "push", "push_sync"]

#: Under the store root: upload sessions a killed push left, for the next push to continue.
UPLOADS_DIR = "uploads"


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


@dataclass(frozen=True)
class PushOptions:
    """How a push sends: transfer limits and retries, the upload form, foreign layers.

    ``chunked``: None = monolithic PUT, falling back to chunks when the registry refuses it;
    True/False = always that form. ``allow_nondistributable`` lists registries (patterns as
    ``docker --allow-nondistributable-artifacts``) that may receive foreign layers. ``limits``
    applies to this push only; ``retry`` configures the push's own upload manager.
    """

    limits: Limits | None = None
    retry: RetryPolicy | None = None
    chunked: bool | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    allow_nondistributable: Sequence[str] = ()


async def push(
    src: str | Reference,
    dst: str | Reference | None = None,
    options: PushOptions | None = None,
    *,
    store: Store,
    sink: ProgressSink | None = None,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
    uploads: UploadManager[Descriptor] | None = None,
) -> PushResult:
    """Push the local image ``src`` to ``dst`` (default: where ``src``'s name says).

    ``src`` is a local reference or image ID; a name without a tag means ``:latest``. ``dst``
    without a tag takes ``src``'s tag. ``session`` is borrowed (never closed); without one, a
    session is opened with ``session_options``. ``uploads`` is a shared upload manager (one per
    process dedups concurrent pushes). Returns the digest the registry now serves under the tag.
    """
    opts = options or PushOptions()
    out: ProgressSink = sink or NullSink()
    image_id, source_ref = await anyio.to_thread.run_sync(find_image, store, str(src))
    ref = _target(src, dst, source_ref)
    assert ref.tag is not None
    async with held(store):
        source = StoreSource(store, str(src), str(src))
        header = f"The push refers to repository [{ref.name}]"
        out.emit(ProgressEvent(status=header, is_message=True))
        lease = lease_session(session, session_options)
        try:
            memory = StoreBlobMemory(store, ref.registry, ref.repository)
            dest = RegistryDestination(
                lease.session.client_for(ref),
                ref.tag,
                memory=memory,
                allow_foreign=_allowed(ref, opts.allow_nondistributable),
                chunked=opts.chunked,
                chunk_size=opts.chunk_size,
                upload_states=UploadStates(store.root / UPLOADS_DIR),
            )
            flow = Flow(
                words=PUSH_WORDS,
                line_ids=lambda d: (memory.diff_id(d) or d.digest).short,
                top_first=True,
                quiet_configs=True,
                lease=lease,
            )
            copying = CopyOptions(all_platforms=True, limits=opts.limits, retry=opts.retry)
            result = await copy_image(source, dest, copying, sink=out, flow=flow, uploads=uploads)
        finally:
            lease.release()
            source.close()
        digest = dest.pushed
        assert digest is not None and source.plan is not None
        await anyio.to_thread.run_sync(_remember, store, source.plan, image_id, ref, digest)
    size = result.size
    out.emit(ProgressEvent(status=f"{ref.tag}: digest: {digest} size: {size}", is_message=True))
    out.emit(ProgressEvent(aux={"Tag": ref.tag, "Digest": str(digest), "Size": size}))
    return PushResult(digest, size, ref)


def _allowed(ref: Reference, patterns: Sequence[str]) -> bool:
    """Whether foreign layers may go to ``ref``'s registry."""
    return any(p in (ref.registry, "*") or familiar_match(p, ref) for p in patterns)


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
    options: PushOptions | None = None,
    **context: Any,
) -> PushResult:
    """Blocking :func:`push` (runs its own event loop); same arguments."""
    return anyio.run(functools.partial(push, src, dst, options, **context), backend="asyncio")
