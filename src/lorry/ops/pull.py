"""``pull``: registry → local store, as a copy on the one engine (:mod:`lorry.ops.copy`).

A pull is ``copy(docker://REF → the store)`` with docker's words and records:

1. resolve (:func:`~lorry.ops.copy.resolve_source`): digest check, index and platform
   selection, schema1 clean-up; registry errors translated as docker does
   (:mod:`~lorry.ops._pull_errors`);
2. per image the config, then the layers through the shared
   :class:`~lorry.transfer.DownloadManager` (:mod:`~lorry.ops.layer_chain`), every byte
   verified in one streaming pass, resumable, DiffIDs checked against the config;
3. the store destination's commit (:class:`~lorry.transports.store.StoreDestination` with
   ``pulled_from``): image, documents, distribution metadata, then tag and repo digest.

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

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError, LorryError
from lorry.ops._held import held
from lorry.ops._pull_errors import translate_pull_error
from lorry.ops._pull_progress import digest_line, pulling_from, status_line
from lorry.ops.blocking import run_blocking
from lorry.ops.copy import CopyOptions, Flow, copy_resolved, resolve_source
from lorry.ops.layer_chain import LayerDownloads, download_manager
from lorry.ops.resolve import platform_warning
from lorry.ops.session import SessionLease, SessionOptions, check_remote_reference, lease_session
from lorry.platform import Platform
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.reference import Reference, parse, parse_docker_ref
from lorry.registry.client import RegistrySession
from lorry.store import Store
from lorry.transfer import DEFAULT_STALL_TIMEOUT, Limits, RetryPolicy
from lorry.transports.registry import RegistrySource
from lorry.transports.store import StoreDestination

__all__ = ["PlatformImage", "PullOptions", "PullResult", "download_manager", "pull", "pull_sync"]


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


@dataclass(frozen=True)
class PullOptions:
    """What to pull and how: platform choice, every tag, transfer limits, retries, stall.

    ``platform`` picks an index entry (default: this host); ``all_platforms`` pulls every
    entry and tags the one for ``platform``; ``all_tags`` pulls every tag of a name-only
    reference. ``limits`` applies to this pull only; ``retry`` and ``stall_timeout`` configure
    the pull's own download manager (a shared one keeps its own).
    """

    platform: str | Platform | None = None
    all_platforms: bool = False
    all_tags: bool = False
    limits: Limits | None = None
    retry: RetryPolicy | None = None
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    #: Inflate each layer while it downloads and check its DiffID before it is registered
    #: (default: digest and size only; the DiffID is checked where the layer is inflated).
    verify_diff_ids: bool = False


async def pull(
    ref: str | Reference,
    options: PullOptions | None = None,
    *,
    store: Store,
    sink: ProgressSink | None = None,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
    download_manager: LayerDownloads | None = None,
) -> PullResult:
    """Pull ``ref`` into ``store`` (see :class:`PullOptions`); return what was stored.

    ``ref`` without tag or digest means ``:latest`` (every tag with ``all_tags``). ``session``
    is borrowed, never closed; without it one is opened with ``session_options``.
    ``download_manager`` is a shared manager (see :func:`download_manager`).
    """
    opts = options or PullOptions()
    target = _parse(ref, opts.all_tags)
    want = Platform.parse(opts.platform) if isinstance(opts.platform, str) else opts.platform
    out: ProgressSink = sink or NullSink()
    shared = download_manager
    async with held(store), _manager(store, shared, opts.retry, opts.stall_timeout) as dm:
        lease = lease_session(session, session_options)
        try:
            job = _Job(store, lease, out, dm, opts.limits, opts.verify_diff_ids)
            if not opts.all_tags:
                result = await _pull_ref(job, target, want, opts.all_platforms)
                out.emit(status_line(result.updated, target.familiar))
                return result
            return await _pull_all_tags(job, target, want, opts.all_platforms)
        finally:
            lease.release()


def pull_sync(
    ref: str | Reference, options: PullOptions | None = None, **context: Any
) -> PullResult:
    """:func:`pull` for synchronous callers: see :func:`~lorry.ops.blocking.run_blocking`."""
    return run_blocking(partial(pull, ref, options, **context))


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
    shared: LayerDownloads | None,
    retry: RetryPolicy | None,
    stall_timeout: float | None,
) -> AsyncIterator[LayerDownloads]:
    """The shared manager if given, else one for this pull only."""
    if shared is not None:
        yield shared
        return
    async with download_manager(store, retry=retry, stall_timeout=stall_timeout) as own:
        yield own


@dataclass(frozen=True)
class _Job:
    """What every tag of one pull shares."""

    store: Store
    lease: SessionLease
    sink: ProgressSink
    downloads: LayerDownloads
    limits: Limits | None
    verify_diff_ids: bool = False


def _reraise(exc: LorryError, ref: Reference) -> NoReturn:
    """Raise ``exc`` as docker words it (:func:`translate_pull_error`), caused by ``exc``."""
    new = translate_pull_error(exc, ref)
    if new is exc:
        raise exc
    raise new from exc


async def _pull_ref(
    job: _Job, ref: Reference, want: Platform | None, all_platforms: bool
) -> PullResult:
    """Pull one tag or digest: copy it into the store, then report what was stored."""
    job.sink.emit(pulling_from(ref.digest or ref.tag or "latest", ref.repository))
    source = RegistrySource(job.lease.session.client_for(ref), ref)
    options = CopyOptions(
        platforms=(want,) if want is not None else (),
        all_platforms=all_platforms,
        limits=job.limits,
    )
    try:
        resolved, raw = await resolve_source(source, options)
    except LorryError as exc:
        _reraise(exc, ref)
    name = f"docker://{ref}"
    dest = StoreDestination(
        job.store, None, name, pulled_from=ref, platform=want, verify_diff_ids=job.verify_diff_ids
    )
    await copy_resolved(
        source,
        dest,
        resolved,
        raw,
        options,
        sink=job.sink,
        flow=Flow(lease=job.lease),
        downloads=job.downloads,
    )
    images = tuple(
        PlatformImage(
            str(target.platform) if target.platform is not None else None,
            image.id,
            target.digest,
        )
        for target, image in zip(resolved.targets, dest.images, strict=True)
    )
    assert dest.tagged is not None
    if not mt.is_index(resolved.media_type):
        warning = await anyio.to_thread.run_sync(
            _platform_warning, job.store, dest.tagged.id, ref, want
        )
        if warning is not None:
            job.sink.emit(ProgressEvent(status=warning, is_message=True))
    job.sink.emit(digest_line(resolved.digest))
    return PullResult(ref, dest.tagged.id, resolved.digest, dest.updated, images)


def _platform_warning(
    store: Store, image_id: Digest, ref: Reference, want: Platform | None
) -> str | None:
    """Docker's warning when the single-platform image pulled does not fit ``want`` or the host."""
    config = store.images.config(image_id)
    if not config.get("os") or not config.get("architecture"):
        return None  # nothing to compare (a config need not say)
    actual = Platform.from_dict(
        {k: config.get(k) for k in ("os", "architecture", "variant") if config.get(k)},
        f"config of {ref.familiar}",
    )
    return platform_warning(ref.familiar, actual, want)


async def _pull_all_tags(
    job: _Job, name: Reference, want: Platform | None, all_platforms: bool
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
