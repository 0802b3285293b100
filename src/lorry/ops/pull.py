"""``pull``: registry → local store, every byte verified in one streaming pass, resumable.

The stages, each in its own module:

1. :mod:`~lorry.ops._pull_resolve` — reference → manifest(s): digest check, index and platform
   selection, schema1 clean-up; registry errors translated as docker does
   (:mod:`~lorry.ops._pull_errors`);
2. :mod:`~lorry.ops._pull_image` — config, then layers through the shared
   :class:`~lorry.transfer.DownloadManager` (:mod:`~lorry.ops._pull_layers` is the byte path),
   DiffIDs checked against the config;
3. :mod:`~lorry.transports.store_records` — image, documents, metadata, then tag and repo digest.

The whole pull runs under :meth:`Store.hold`, so a concurrent prune cannot delete a verified but
not yet referenced blob, and nothing is tagged before every layer and the config verified.
Progress goes to ``sink`` as docker's pull shows it: ``<tag>: Pulling from <repo>``, per-layer
lines, ``Digest: …`` and ``Status: …``. Two pulls in one process share a blob's download when
they share a :class:`DownloadManager` (:func:`download_manager`); two processes meet at the
store's ingest locks: the second waits for the first's ingest and then finds the blob there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, NoReturn

import anyio
import anyio.to_thread

from lorry.digest import Digest
from lorry.errors import InvalidInputError, LorryError
from lorry.ops._held import held
from lorry.ops._pull_errors import translate_pull_error
from lorry.ops._pull_image import ImageJob, pull_target
from lorry.ops._pull_layers import FetchedLayer, StoreLayers
from lorry.ops._pull_progress import digest_line, pulling_from, status_line
from lorry.ops._pull_resolve import Resolved, resolve
from lorry.ops.session import SessionOptions, check_remote_reference, lease_session
from lorry.platform import Platform, ranked
from lorry.progress import NullSink, ProgressSink
from lorry.reference import Reference, parse, parse_docker_ref
from lorry.registry.client import RegistrySession
from lorry.store import Layer, Store
from lorry.transfer import DEFAULT_STALL_TIMEOUT, DownloadManager, Limits, RetryPolicy
from lorry.transports.store_records import Document, record_refs

__all__ = ["PlatformImage", "PullResult", "download_manager", "pull", "pull_sync"]


@dataclass(frozen=True)
class PlatformImage:
    """One image a pull stored: the index entry's platform (if any), image ID, manifest digest."""

    platform: str | None
    image_id: Digest
    manifest_digest: Digest


@dataclass(frozen=True)
class PullResult:
    """What a pull did.

    ``image_id`` is the image the reference now points at; ``manifest_digest`` the digest
    reported and recorded as repo digest (the index's when the reference names an index).
    ``images`` lists every image stored (several with ``all_platforms``); ``updated`` says
    whether the reference changed (``Downloaded newer image``). With ``all_tags``, ``tags``
    holds one result per tag and the top-level fields are those of ``latest`` (else the last).
    """

    reference: Reference
    image_id: Digest
    manifest_digest: Digest
    updated: bool
    images: tuple[PlatformImage, ...]
    tags: tuple[PullResult, ...] = ()


def download_manager(
    store: Store,
    *,
    limits: Limits | None = None,
    retry: RetryPolicy | None = None,
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
) -> DownloadManager[FetchedLayer, Layer]:
    """A download manager for pulls into ``store``; share one (``async with``) between pulls."""
    return DownloadManager(
        StoreLayers(store), limits=limits, retry=retry, stall_timeout=stall_timeout
    )


async def pull(
    ref: str | Reference,
    *,
    store: Store,
    platform: str | Platform | None = None,
    all_platforms: bool = False,
    all_tags: bool = False,
    sink: ProgressSink | None = None,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
    limits: Limits | None = None,
    download_manager: DownloadManager[FetchedLayer, Layer] | None = None,
    retry: RetryPolicy | None = None,
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
) -> PullResult:
    """Pull ``ref`` into ``store``; return the image ID and the manifest digest.

    ``ref`` without tag or digest means ``:latest`` (every tag with ``all_tags``). ``platform``
    picks an index entry (default: this host); ``all_platforms`` pulls every entry and tags the
    one for ``platform``. ``session`` is borrowed, never closed; without it one is opened with
    ``session_options``. ``download_manager`` is a shared manager (see :func:`download_manager`);
    without it the pull runs its own with ``retry`` and ``stall_timeout``. ``limits`` applies
    to this pull only.
    """
    target = _parse(ref, all_tags)
    want = Platform.parse(platform) if isinstance(platform, str) else platform
    out: ProgressSink = sink or NullSink()
    async with held(store), _manager(store, download_manager, retry, stall_timeout) as dm:
        lease = lease_session(session, session_options)
        try:
            job = ImageJob(store, lease, target, out, dm, limits)
            if not all_tags:
                result = await _pull_ref(job, target, want, all_platforms)
                out.emit(status_line(result.updated, target.familiar))
                return result
            return await _pull_all_tags(job, target, want, all_platforms)
        finally:
            lease.release()


def pull_sync(ref: str | Reference, **options: Any) -> PullResult:
    """:func:`pull` for synchronous callers: runs it in a new event loop (``anyio.run``)."""
    return anyio.run(partial(pull, ref, **options))


def _parse(ref: str | Reference, all_tags: bool) -> Reference:
    """The fully qualified reference to pull (name only with ``all_tags``)."""
    if isinstance(ref, Reference):
        parsed = ref
    else:
        parsed = parse(ref) if all_tags else parse_docker_ref(ref)
    check_remote_reference(parsed)
    if all_tags and not parsed.is_name_only:
        raise InvalidInputError(f"{ref}: tag or digest can't be used with all tags")
    if not all_tags and parsed.is_name_only:
        parsed = parsed.with_default_tag()
    return parsed


@asynccontextmanager
async def _manager(
    store: Store,
    shared: DownloadManager[FetchedLayer, Layer] | None,
    retry: RetryPolicy | None,
    stall_timeout: float | None,
) -> AsyncIterator[DownloadManager[FetchedLayer, Layer]]:
    """The shared manager if given, else one for this pull only."""
    if shared is not None:
        yield shared
        return
    async with download_manager(store, retry=retry, stall_timeout=stall_timeout) as own:
        yield own


async def _resolve(
    job: ImageJob, ref: Reference, want: Platform | None, all_platforms: bool
) -> Resolved:
    """Resolve in a worker thread; registry errors as docker words them."""
    client = job.lease.session.client_for(ref)
    try:
        return await anyio.to_thread.run_sync(
            partial(resolve, client, ref, platform=want, all_platforms=all_platforms)
        )
    except LorryError as exc:
        _reraise(exc, ref)


def _reraise(exc: LorryError, ref: Reference) -> NoReturn:
    """Raise ``exc`` as docker words it (:func:`translate_pull_error`), caused by ``exc``."""
    new = translate_pull_error(exc, ref)
    if new is exc:
        raise exc
    raise new from exc


async def _pull_ref(
    job: ImageJob, ref: Reference, want: Platform | None, all_platforms: bool
) -> PullResult:
    """Pull one tag or digest: resolve, pull each chosen image, then point the refs at one."""
    job.sink.emit(pulling_from(ref.digest or ref.tag or "latest", ref.repository))
    resolved = await _resolve(job, ref, want, all_platforms)
    index_docs = [Document(ix.raw, ix.media_type) for ix in resolved.indexes]
    images: list[PlatformImage] = []
    for target in resolved.targets:
        docs = [Document(target.manifest.raw, target.media_type), *index_docs]
        image = await pull_target(job, target, docs)
        shown = str(target.platform) if target.platform is not None else None
        images.append(PlatformImage(shown, image.id, target.digest))
    chosen = images[_tagged(resolved, want)]

    def refs() -> bool:
        return record_refs(
            job.store,
            ref.name,
            chosen.image_id,
            tag=None if ref.digest else ref.tag,
            digest=resolved.digest,
            digest_media_type=resolved.media_type,
        )

    updated = await anyio.to_thread.run_sync(refs)
    job.sink.emit(digest_line(resolved.digest))
    return PullResult(ref, chosen.image_id, resolved.digest, updated, tuple(images))


def _tagged(resolved: Resolved, want: Platform | None) -> int:
    """Which pulled image the reference points at: the best for the wanted platform."""
    if len(resolved.targets) == 1:
        return 0
    order = ranked(want or Platform.host(), [t.platform for t in resolved.targets])
    return order[0] if order else 0


async def _pull_all_tags(
    job: ImageJob, name: Reference, want: Platform | None, all_platforms: bool
) -> PullResult:
    """Pull every tag of the repository, one after the other (docker's ``pull -a``)."""
    client = job.lease.session.client_for(name)
    try:
        tags = await anyio.to_thread.run_sync(client.list_tags)
    except LorryError as exc:
        _reraise(exc, name)
    if not tags:
        raise InvalidInputError(f"no tags to pull for {name.familiar_name}")
    results = [await _pull_ref(job, name.with_tag(t), want, all_platforms) for t in tags]
    updated = any(r.updated for r in results)
    job.sink.emit(status_line(updated, name.familiar))
    main = next((r for r in results if r.reference.tag == "latest"), results[-1])
    return PullResult(
        name, main.image_id, main.manifest_digest, updated, main.images, tuple(results)
    )
