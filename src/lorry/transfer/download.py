"""The download manager: pull an image's layers into the layer store (xfer-spec §2, §7.27).

Two kinds of transfer do the work. A **fetch** transfer, keyed by the blob digest, runs the
descriptor's ``download`` under the download limit, with retries and stall detection; every pull
that needs that blob — on whatever parent — shares it, so the network sees each blob once. A
**layer** transfer, keyed by the chain of blob keys from the bottom of the image to this layer,
waits for its fetch and for the layer below, then registers the blob in the layer store under
the CPU limit; two pulls share it only when the whole chain below is identical. Fetches run in
parallel; registration follows the chain bottom→top. Layers whose ChainID is already in the
store are reported ``Already exists`` and not fetched at all.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc

from lorry.digest import ChainID, DiffID, chain_id
from lorry.errors import StoreError
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.transfer import statuses as st
from lorry.transfer.clock import Clock, SystemClock
from lorry.transfer.jobs import GuardedRetry
from lorry.transfer.limits import Limits
from lorry.transfer.manager import Job, Transfer, TransferContext, TransferManager, Watcher
from lorry.transfer.oplimits import OpGate, gather_results, limited
from lorry.transfer.protocols import DownloadDescriptor, LayerLike, LayerStoreLike
from lorry.transfer.retry import RetryPolicy
from lorry.transfer.stall import DEFAULT_STALL_TIMEOUT

__all__ = ["DownloadManager", "LayerRelease"]

H = TypeVar("H")
L = TypeVar("L", bound=LayerLike)


class _Relay:
    """Forwards a fetch's progress to the layer transfer that adopted it, replaying the latest."""

    def __init__(self) -> None:
        self.target: ProgressSink | None = None
        self.latest: ProgressEvent | None = None

    def emit(self, event: ProgressEvent) -> None:
        """Remember the event and pass it on if a target is bound."""
        self.latest = event
        if self.target is not None:
            self.target.emit(event)

    def bind(self, target: ProgressSink | None) -> None:
        """Start forwarding to ``target`` (None drops events), replaying the latest first."""
        self.target = target
        if target is not None and self.latest is not None:
            target.emit(self.latest)


class LayerRelease(Generic[L]):
    """Keeps a pulled image's layers referenced until awaited (idempotent).

    Call it after the image store has taken its own reference on the top layer, so the layers
    can never be collected in between (xfer-spec §2.2 step 8).
    """

    def __init__(
        self, store: LayerStoreLike[Any, L], watcher: Watcher[L] | None, layer: L | None
    ) -> None:
        self._store = store
        self._watcher = watcher
        self._layer = layer

    async def __call__(self) -> None:
        """Drop the references."""
        watcher, self._watcher = self._watcher, None
        layer, self._layer = self._layer, None
        with anyio.CancelScope(shield=True):
            if watcher is not None:
                await watcher.release()
            if layer is not None:
                await self._store.release(layer)


class DownloadManager(Generic[H, L]):
    """Shared by every pull of a process; use as ``async with DownloadManager(store) as dm``."""

    def __init__(
        self,
        store: LayerStoreLike[H, L],
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        limits = limits or Limits()
        self._store = store
        #: The retry policy of every fetch; pull's config fetch uses it too (one rule).
        self.retry = retry or RetryPolicy()
        self._guarded = GuardedRetry(self.retry, stall_timeout, clock or SystemClock())
        self.fetches = TransferManager(limits.downloads, name="download")
        self.layers = TransferManager(0, name="layer registration")
        self._cpu = anyio.CapacityLimiter(limits.cpu)

    async def __aenter__(self) -> DownloadManager[H, L]:
        await self.fetches.__aenter__()
        try:
            await self.layers.__aenter__()
        except BaseException:
            await self.fetches.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.layers.aclose()
        finally:
            await self.fetches.aclose()

    def set_limits(self, limits: Limits) -> None:
        """Change the process-wide download and CPU limits at run time."""
        self.fetches.set_limit(limits.downloads)
        self._cpu.total_tokens = limits.cpu

    async def wait_idle(self) -> None:
        """Wait until no transfer runs and every release hook has run."""
        await self.layers.wait_idle()
        await self.fetches.wait_idle()

    async def download(
        self,
        initial_rootfs: Sequence[DiffID],
        descriptors: Sequence[DownloadDescriptor[H]],
        sink: ProgressSink,
        *,
        limits: Limits | None = None,
    ) -> tuple[list[DiffID], LayerRelease[L]]:
        """Make the layers exist in the store; return the rootfs DiffIDs and a release handle.

        ``descriptors`` go bottom→top on top of ``initial_rootfs`` (whose top layer the caller
        keeps referenced during the call). ``limits`` tightens the
        download and CPU limits for this call only. On error or cancellation every reference
        is dropped before the error propagates; on success the handle keeps them.
        """
        descs = list(descriptors)
        rootfs = list(initial_rootfs)
        top_existing: L | None = None
        run: _PullRun[H, L] | None = None
        try:
            for desc in descs:
                found = await self._existing(rootfs, desc)
                if found is None:
                    break
                if top_existing is not None:
                    await self._store.release(top_existing)
                top_existing = found
                rootfs.append(found.diff_id)
                sink.emit(ProgressEvent(id=desc.id(), status=st.ALREADY_EXISTS))
            missing = descs[len(rootfs) - len(initial_rootfs) :]
            if not missing:
                release = LayerRelease(self._store, None, top_existing)
                top_existing = None
                _report(descs, rootfs)
                return rootfs, release
            run = _PullRun(self, sink, limits)
            layers = await run.run(list(initial_rootfs), descs, rootfs)
            rootfs.extend(layer.diff_id for layer in layers)
            if chain_id(rootfs) != layers[-1].chain_id:
                raise StoreError(
                    f"internal error: layer store chain {layers[-1].chain_id} "
                    f"does not match the pulled DiffIDs"
                )
            _report(descs, rootfs)
            return rootfs, LayerRelease(self._store, run.take_top(), None)
        finally:
            with anyio.CancelScope(shield=True):
                if run is not None:
                    await run.cleanup()
                if top_existing is not None:
                    await self._store.release(top_existing)
                for desc in descs:
                    if run is None or id(desc) not in run.owned_by_fetch:
                        desc.close()

    async def _existing(self, rootfs: list[DiffID], desc: DownloadDescriptor[H]) -> L | None:
        diff_id = desc.diff_id()
        if diff_id is None:
            return None
        return await self._store.get(chain_id([*rootfs, diff_id]), desc.key())

    def fetch_job(self, desc: DownloadDescriptor[H]) -> Job[H]:
        """The fetch transfer's job: download with retries and a stall watchdog."""
        return self._guarded.job(
            desc.download, desc.close, desc.id(), f"downloading layer {desc.id()}"
        )

    def layer_job(
        self,
        line_id: str,
        fetch: Watcher[H],
        relay: _Relay,
        parent: Watcher[L] | ChainID | None,
        *,
        quiet: bool,
        cpu: anyio.CapacityLimiter | None,
    ) -> Job[L]:
        """The layer transfer's job; it owns ``fetch`` and a ``parent`` watcher."""

        def job(ctx: TransferContext) -> Awaitable[L]:
            ctx.on_released(fetch.release)
            if isinstance(parent, Watcher):
                ctx.on_released(parent.release)
            relay.bind(None if quiet else ctx)
            return self._register(ctx, line_id, fetch, parent, quiet=quiet, cpu=cpu)

        return job

    async def _register(
        self,
        ctx: TransferContext,
        line_id: str,
        fetch: Watcher[H],
        parent: Watcher[L] | ChainID | None,
        *,
        quiet: bool,
        cpu: anyio.CapacityLimiter | None,
    ) -> L:
        emit = (lambda e: None) if quiet else ctx.emit
        handle = await fetch.result()
        parent_chain = (await parent.result()).chain_id if isinstance(parent, Watcher) else parent
        emit(ProgressEvent(id=line_id, status=st.EXTRACTING))

        def extracting(current: int, total: int | None) -> None:
            emit(ProgressEvent(id=line_id, status=st.EXTRACTING, current=current, total=total))

        async with limited(cpu, self._cpu):
            layer = await self._store.register(handle, parent_chain, extracting)
        ctx.on_released(partial(self._store.release, layer))
        await fetch.release()
        if isinstance(parent, Watcher):
            await parent.release()
        emit(ProgressEvent(id=line_id, status=st.PULL_COMPLETE))
        return layer


async def _release_all(*watchers: Watcher[Any] | None) -> None:
    with anyio.CancelScope(shield=True):
        for w in watchers:
            if w is not None:
                await w.release()


def _report(descs: Sequence[DownloadDescriptor[Any]], rootfs: Sequence[DiffID]) -> None:
    base = len(rootfs) - len(descs)
    for i, desc in enumerate(descs):
        desc.registered(rootfs[base + i])


class _PullRun(Generic[H, L]):
    """The transfers of the missing layers of one ``download`` call."""

    def __init__(
        self, mgr: DownloadManager[H, L], sink: ProgressSink, limits: Limits | None
    ) -> None:
        self.mgr = mgr
        self.sink = sink
        self.gate = OpGate(limits.downloads if limits else 0)
        self.cpu = anyio.CapacityLimiter(limits.cpu) if limits else None
        self.watchers: list[Watcher[L]] = []
        self.owned_by_fetch: set[int] = set()  # ids of descriptors a fetch job will close
        self.fetches: dict[str, Transfer[H]] = {}

    async def run(
        self,
        initial: list[DiffID],
        descs: list[DownloadDescriptor[H]],
        rootfs: list[DiffID],
    ) -> list[L]:
        """Create or join every missing layer's transfers, then wait for all of them."""
        keys = [d.key() for d in descs]
        base = str(chain_id(initial)) if initial else ""
        n_existing = len(rootfs) - len(initial)
        parent: Watcher[L] | ChainID | None = chain_id(rootfs) if rootfs else None
        error: Exception | None = None
        results: list[L] = []
        async with anyio.create_task_group() as tg:
            try:
                for i in range(n_existing, len(descs)):
                    chain_key = "\n".join([base, *keys[: i + 1]])
                    dup = keys[i] in keys[n_existing:i]
                    lw = await self.layer(tg, descs[i], chain_key, parent, dup)
                    self.watchers.append(lw)
                    parent = lw
                results = await gather_results(self.watchers)
            except Exception as exc:  # re-raised below: anyio would wrap it in a group
                error = exc
            tg.cancel_scope.cancel()
        if error is not None:
            raise error
        return results

    async def layer(
        self,
        tg: anyio.abc.TaskGroup,
        desc: DownloadDescriptor[H],
        chain_key: str,
        parent: Watcher[L] | ChainID | None,
        dup: bool,
    ) -> Watcher[L]:
        """Watch the layer transfer of one missing layer, creating it (and its fetch) if new."""
        line = desc.id()
        sink: ProgressSink = NullSink() if dup else self.sink
        if not dup:
            sink.emit(ProgressEvent(id=line, status=st.PULLING_FS_LAYER))
        live = self.mgr.layers.peek(chain_key)
        if live is not None:
            return live.watch(sink)
        relay = _Relay()
        fw = await self.fetch_watcher(tg, desc, relay)
        pw = parent.transfer.watch(NullSink()) if isinstance(parent, Watcher) else None
        job = self.mgr.layer_job(line, fw, relay, pw or parent, quiet=dup, cpu=self.cpu)
        try:
            lw = await self.mgr.layers.watch(chain_key, job, sink)
        except BaseException:
            await _release_all(fw, pw)
            raise
        if not lw.is_creator:  # joined a layer transfer that appeared meanwhile
            await _release_all(fw, pw)
        return lw

    async def fetch_watcher(
        self, tg: anyio.abc.TaskGroup, desc: DownloadDescriptor[H], relay: _Relay
    ) -> Watcher[H]:
        """Watch the fetch of this blob: this call's own, a live shared one, or a new one."""
        key = desc.key()
        seen = self.fetches.get(key)
        if seen is not None:
            return seen.watch(relay)
        waiting = ProgressEvent(id=desc.id(), status=st.WAITING)
        await self.gate.acquire(self.sink, waiting)
        fw = await self.mgr.fetches.watch(key, self.mgr.fetch_job(desc), relay, waiting=waiting)
        self.gate.release_when_done(tg, fw.transfer)
        if fw.is_creator:
            self.owned_by_fetch.add(id(desc))
        self.fetches[key] = fw.transfer
        return fw

    def take_top(self) -> Watcher[L]:
        """Hand the top layer's watcher to the release handle; cleanup leaves it alone."""
        return self.watchers.pop()

    async def cleanup(self) -> None:
        """Release every watcher this call still holds."""
        for w in self.watchers:
            await w.release()
        self.watchers.clear()
