"""``sync``: many images from sources to destinations through one copy engine at once.

Per image (one tag of one source repository), cheapest first:

1. one manifest HEAD at the source and one per destination (a read of ``index.json`` for a
   layout): equal digests mean ``unchanged``, and nothing else is asked (a platform subset
   also reads the source index and its manifests, since the subset is a document of its own);
2. otherwise the source is resolved once (:func:`~lorry.ops.copy.resolve_source`) and copied to
   each destination that differs (:func:`~lorry.ops.copy.copy_resolved`), every copy of the
   run through one :class:`~lorry.transfer.UploadManager` and one registry session, so the
   global limits hold across images, a blob moves once per repository, and the
   :class:`~lorry.ops.sync.ledger.BlobLedger` mounts it into the other repositories of a
   registry instead of fetching it again;
3. referrers of each synced digest (:mod:`lorry.ops.sync.referrers`): listed by the OCI 1.1
   API where the source has it, else by the fallback tag ``sha256-<hex>``; each synced by
   digest the same way (digests unchanged), and the fallback index written at destinations
   without the API; cosign's ``….sig/.att/.sbom`` tags are synced as tagged images.

``jobs`` images run at once. A failure stops the run (after the images in flight end) unless
``keep_going``; either way the report lists every image that was decided.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import anyio
import anyio.to_thread

from lorry.digest import Digest
from lorry.errors import LorryError, NotFoundError
from lorry.oci import Descriptor
from lorry.ops.blob_move import COPY_WORDS
from lorry.ops.copy import CopyOptions, Flow, _plan, copy_resolved, resolve_source
from lorry.ops.resolve import Resolved
from lorry.ops.session import SessionLease, SessionOptions, lease_session
from lorry.ops.sync.config import SyncConfig
from lorry.ops.sync.filters import referrer_tags
from lorry.ops.sync.ledger import BlobLedger
from lorry.ops.sync.plan import Item, Shard, list_repositories, list_tags
from lorry.ops.sync.referrers import Listing, Referrers
from lorry.ops.sync.report import Entry, SyncReport
from lorry.ops.sync.targets import (
    Target,
    apply_rates,
    by_digest,
    current_digest,
    open_target,
    session_options,
    target,
)
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.reference import Reference
from lorry.registry.client import RegistrySession
from lorry.registry.referrers import fallback_tag
from lorry.transfer import DEFAULT_STALL_TIMEOUT, Limits, RetryPolicy, UploadManager
from lorry.transports.registry import RegistrySource

__all__ = ["SyncOptions", "sync"]

#: How deep referrers of referrers are followed (a signature of an SBOM of an image).
_REFERRER_DEPTH = 2


@dataclass(frozen=True)
class SyncOptions:
    """How a sync runs: dry run, keep going, shard, limits, retries, sessions."""

    dry_run: bool = False
    keep_going: bool = False
    shard: Shard | None = None
    limits: Limits | None = None
    retry: RetryPolicy | None = None
    stall_timeout: float | None = DEFAULT_STALL_TIMEOUT
    #: lorry.toml's session options, under the file's registries.
    session: SessionOptions | None = None


class _Bytes:
    """Counts the bytes of blobs a copy sent (not reused or mounted), forwarding every event."""

    def __init__(self, forward: ProgressSink) -> None:
        self.forward = forward
        self.sizes: dict[str, int] = {}
        self.sent = 0

    def emit(self, event: ProgressEvent) -> None:
        """Note sizes and finished sends; pass the event on."""
        if event.total:
            self.sizes[event.id] = event.total
        if event.status == COPY_WORDS.done:
            self.sent += self.sizes.pop(event.id, 0)
        self.forward.emit(event)


class _StopRunError(Exception):
    """Ends the run at the first failure (without ``keep_going``)."""


class _Run:
    """The state of one sync run, shared by every image task."""

    def __init__(
        self,
        config: SyncConfig,
        options: SyncOptions,
        lease: SessionLease,
        uploads: UploadManager[Descriptor],
        *,
        on_entry: Callable[[Entry], None] | None,
        layer_sink: ProgressSink | None,
        report: SyncReport,
    ) -> None:
        self.config = config
        self.options = options
        self.lease = lease
        self.session: RegistrySession = lease.session
        self.uploads = uploads
        self.ledger = BlobLedger()
        self.referrers = Referrers()
        self.report = report
        self.on_entry = on_entry
        self.layer_sink = layer_sink or NullSink()
        self.jobs = anyio.CapacityLimiter(config.jobs)
        self.first_error: LorryError | None = None

    def record(self, entry: Entry, error: LorryError | None = None) -> None:
        self.report.add(entry, error)
        if self.on_entry is not None:
            self.on_entry(entry)
        if error is not None and not self.options.keep_going:
            if self.first_error is None:
                self.first_error = error
            raise _StopRunError

    async def source(self, index: int) -> None:
        """List one source's repositories and tags; run its images."""
        spec = self.config.sources[index]
        try:
            repos = await anyio.to_thread.run_sync(list_repositories, self.session, spec)
        except LorryError as exc:
            self._failed_listing(spec.text, spec.destinations, exc)
            return
        async with anyio.create_task_group() as tg:
            for repo in repos:
                tg.start_soon(self.repository, index, repo)

    async def repository(self, index: int, repo: str) -> None:
        spec = self.config.sources[index]
        client = self.session.client(spec.registry, repo)
        try:
            async with self.jobs:
                items = await anyio.to_thread.run_sync(list_tags, client, spec)
        except LorryError as exc:
            self._failed_listing(f"docker://{spec.registry}/{repo}", spec.destinations, exc)
            return
        shard = self.options.shard
        async with anyio.create_task_group() as tg:
            for item in items:
                if shard is None or shard.takes(item):
                    tg.start_soon(self.image, item, None, 0)

    def _failed_listing(self, source: str, dests: tuple[object, ...], exc: LorryError) -> None:
        for dest in dests:
            name = getattr(dest, "text", str(dest))
            self.record(Entry(source, name, "failed", error=str(exc)), exc)

    async def image(self, item: Item, subject: Digest | None, depth: int) -> None:
        """Decide and copy one image at every destination; then its referrers."""
        wheres = [target(d, item) for d in item.source.destinations]
        name = f"docker://{item.key}"
        async with self.jobs:
            try:
                digests = await self._image(item, wheres, name, subject)
            except LorryError as exc:
                for where in wheres:
                    entry = Entry(
                        name, where.name, "failed", error=str(exc), referrer_of=_s(subject)
                    )
                    self.record(entry, exc)
                return
        if item.source.referrers and depth < _REFERRER_DEPTH:
            await self._referrers(item, wheres, digests, depth)

    async def _referrers(
        self, item: Item, wheres: list[Target], digests: list[Digest], depth: int
    ) -> None:
        """Sync the referrers of ``digests``: each by digest, then the fallback indexes of
        destinations without the API; cosign's ``….sig/.att/.sbom`` tags as tagged images."""
        client = self.session.client(item.registry, item.repository)
        for subject in digests:
            try:
                listing = await anyio.to_thread.run_sync(
                    self.referrers.listing, client, subject, item.listed
                )
            except LorryError as exc:
                source = f"docker://{item.registry}/{item.repository}@{subject}"
                for where in wheres:
                    self.record(Entry(source, where.name, "failed", error=str(exc)), exc)
                continue
            for desc in listing.descriptors:
                sub = Item(item.source, item.repository, str(desc.digest), item.listed)
                await self.image(sub, subject, depth + 1)
            if listing.descriptors:
                for where in wheres:
                    await self._fallback_index(item, where, subject, listing)
        fallback = {fallback_tag(d) for d in digests}
        for tag in referrer_tags(item.listed or (), digests):
            if tag not in fallback:
                sub = Item(item.source, item.repository, tag, item.listed)
                await self.image(sub, digests[0], depth + 1)

    async def _fallback_index(
        self, item: Item, where: Target, subject: Digest, listing: Listing
    ) -> None:
        """Write the fallback tag's index at a destination without the referrers API."""
        tag = fallback_tag(subject)
        source = f"docker://{item.registry}/{item.repository}:{tag}"
        name = where.name.rpartition("@" if "@" in where.name else ":")[0] + f":{tag}"
        try:
            done = await anyio.to_thread.run_sync(
                partial(
                    self.referrers.write_fallback,
                    self.session,
                    where,
                    subject,
                    listing,
                    dry_run=self.options.dry_run,
                )
            )
        except LorryError as exc:
            self.record(
                Entry(source, name, "failed", error=str(exc), referrer_of=str(subject)), exc
            )
            return
        if done is not None:
            action, digest = done
            entry = Entry(source, name, action, _s(digest), _s(digest), referrer_of=str(subject))
            self.record(entry)

    async def _image(
        self, item: Item, wheres: list[Target], name: str, subject: Digest | None
    ) -> list[Digest]:
        """The no-op check and the copies; the digests whose referrers to look for."""
        client = self.session.client(item.registry, item.repository)
        info = await anyio.to_thread.run_sync(client.head_manifest, item.tag)
        if info is None:
            raise NotFoundError(f"{name}: no such tag at the source")
        platforms = item.source.platforms if subject is None else None
        opts = CopyOptions(
            platforms=platforms or (),
            all_platforms=platforms is None,
            limits=self.options.limits,
            retry=self.options.retry,
        )
        tag, digest = (None, item.tag) if by_digest(item.tag) else (item.tag, None)
        source = RegistrySource(client, Reference(item.registry, item.repository, tag, digest))
        resolved: tuple[Resolved, bytes] | None = None
        want = info.digest
        currents = [await anyio.to_thread.run_sync(current_digest, self.session, w) for w in wheres]
        if platforms is not None:  # a subset is a document of its own: compute its digest
            resolved = await resolve_source(source, opts)
            dest = open_target(self.session, wheres[0], item, self.ledger)
            want = _plan(resolved[0], resolved[1], dest, opts, top_first=False).top[2]
        for where, current in zip(wheres, currents, strict=True):
            base = Entry(name, where.name, "unchanged", str(info.digest), _s(current))
            base = replace(base, referrer_of=_s(subject))
            if current == want:
                self.record(base)
                continue
            if self.options.dry_run:
                self.record(replace(base, action="would-copy"))
                continue
            if resolved is None:
                resolved = await resolve_source(source, opts)
            try:
                self.record(await self._copy(item, where, source, resolved, opts=opts, base=base))
            except LorryError as exc:
                self.record(replace(base, action="failed", error=str(exc)), exc)
        digests = [info.digest]
        if resolved is not None:
            digests += [t.digest for t in resolved[0].targets if t.digest != info.digest]
        return digests

    async def _copy(
        self,
        item: Item,
        where: Target,
        source: RegistrySource,
        resolved: tuple[Resolved, bytes],
        *,
        opts: CopyOptions,
        base: Entry,
    ) -> Entry:
        dest = open_target(self.session, where, item, self.ledger)
        counted = _Bytes(self.layer_sink)
        result = await copy_resolved(
            source,
            dest,
            resolved[0],
            resolved[1],
            opts,
            sink=counted,
            flow=Flow(lease=self.lease),
            uploads=self.uploads,
        )
        return replace(
            base, action="copied", destination_digest=str(result.digest), bytes=counted.sent
        )


def _s(digest: Digest | None) -> str | None:
    return str(digest) if digest is not None else None


async def sync(
    config: SyncConfig,
    options: SyncOptions | None = None,
    *,
    on_entry: Callable[[Entry], None] | None = None,
    layer_sink: ProgressSink | None = None,
    session: RegistrySession | None = None,
    report: SyncReport | None = None,
) -> SyncReport:
    """Run ``config``; the report of every image decided (see the module docstring).

    ``on_entry`` hears each entry as it is decided (the CLI's one line per image);
    ``layer_sink`` gets the copies' blob progress. Without ``keep_going`` the first failure is
    raised after the images in flight end; with it, failures are only in the report.
    ``report`` is filled as the run goes (so a caller has it even when the run raises).
    """
    opts = options or SyncOptions()
    lease = lease_session(session, session_options(config, opts.session))
    try:
        apply_rates(lease.session, config.registries, opts.shard.count if opts.shard else 1)
        limits = opts.limits or Limits()
        limits = Limits(downloads=limits.downloads, uploads=config.transfers, cpu=limits.cpu)
        manager = UploadManager[Descriptor](
            limits=limits, retry=opts.retry, stall_timeout=opts.stall_timeout
        )
        async with manager as uploads:
            run = _Run(
                config,
                opts,
                lease,
                uploads,
                on_entry=on_entry,
                layer_sink=layer_sink,
                report=report if report is not None else SyncReport(),
            )
            try:
                async with anyio.create_task_group() as tg:
                    for i in range(len(config.sources)):
                        tg.start_soon(run.source, i)
            except* _StopRunError:
                pass
    finally:
        lease.release()
    if run.first_error is not None:
        raise run.first_error
    return run.report
