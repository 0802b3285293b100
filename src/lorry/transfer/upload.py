"""The upload manager: make a push's layers exist in the target repository (xfer-spec §3).

Each distinct layer becomes one transfer keyed by registry + repository + digest
(:func:`~lorry.transfer.protocols.upload_key`), so pushes of one repository name to two
registries are never merged (xfer-spec §7.12) while concurrent pushes of the same layer to the
same place share one upload. Uploads are independent of each other (no parent chain), hold
their slot for the whole upload including retry delays, and use the same retry policy and stall
watchdog as downloads. The descriptor reports the final status (``Pushed``, ``Layer already
exists``, ``Mounted from <repo>``, ``Skipped foreign layer``); the manager reports
``Preparing`` and ``Waiting``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import anyio

from lorry.progress import ProgressEvent, ProgressSink
from lorry.transfer import statuses as st
from lorry.transfer.clock import Clock, SystemClock
from lorry.transfer.jobs import GuardedRetry
from lorry.transfer.limits import Limits
from lorry.transfer.manager import Job, TransferManager, Watcher
from lorry.transfer.oplimits import OpGate, gather_results
from lorry.transfer.protocols import UploadDescriptor
from lorry.transfer.retry import RetryPolicy
from lorry.transfer.stall import DEFAULT_STALL_TIMEOUT

__all__ = ["UploadManager"]

R = TypeVar("R")


class UploadManager(Generic[R]):
    """Shared by every push of a process; use as ``async with UploadManager() as um``."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        clock: Clock | None = None,
    ) -> None:
        limits = limits or Limits()
        self._guarded = GuardedRetry(retry or RetryPolicy(), stall_timeout, clock or SystemClock())
        self.uploads = TransferManager(limits.uploads, name="upload")

    async def __aenter__(self) -> UploadManager[R]:
        await self.uploads.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.uploads.aclose()

    def set_limits(self, limits: Limits) -> None:
        """Change the process-wide upload limit at run time."""
        self.uploads.set_limit(limits.uploads)

    async def wait_idle(self) -> None:
        """Wait until no upload runs and every release hook has run."""
        await self.uploads.wait_idle()

    async def upload(
        self,
        descriptors: Sequence[UploadDescriptor[R]],
        sink: ProgressSink,
        *,
        limits: Limits | None = None,
    ) -> list[R]:
        """Upload every layer; return the remote descriptors in the order given.

        ``Preparing`` is reported for every descriptor in the given order (push passes layers
        top→bottom). Duplicate keys are uploaded once. The first failure in time is raised at
        once and the remaining uploads nobody else watches are cancelled. ``limits.uploads``
        tightens the upload limit for this call only.
        """
        descs = list(descriptors)
        for desc in descs:
            sink.emit(ProgressEvent(id=desc.id(), status=st.PREPARING))
        watchers: dict[str, Watcher[R]] = {}
        owned: set[int] = set()
        try:
            results = await self._run(descs, sink, limits, watchers, owned)
            by_key = dict(zip(watchers, results, strict=True))
            return [by_key[desc.key()] for desc in descs]
        finally:
            with anyio.CancelScope(shield=True):
                for w in watchers.values():
                    await w.release()
                for desc in descs:
                    if id(desc) not in owned:
                        desc.close()

    async def _run(
        self,
        descs: list[UploadDescriptor[R]],
        sink: ProgressSink,
        limits: Limits | None,
        watchers: dict[str, Watcher[R]],
        owned: set[int],
    ) -> list[R]:
        gate = OpGate(limits.uploads if limits else 0)
        error: Exception | None = None
        results: list[R] = []
        async with anyio.create_task_group() as tg:
            try:
                for desc in descs:
                    key = desc.key()
                    if key in watchers:
                        continue
                    waiting = ProgressEvent(id=desc.id(), status=st.WAITING)
                    await gate.acquire(sink, waiting)
                    w = await self.uploads.watch(key, self.upload_job(desc), sink, waiting=waiting)
                    gate.release_when_done(tg, w.transfer)
                    if w.is_creator:
                        owned.add(id(desc))
                    watchers[key] = w
                results = await gather_results(list(watchers.values()))
            except Exception as exc:  # re-raised below: anyio would wrap it in a group
                error = exc
            tg.cancel_scope.cancel()
        if error is not None:
            raise error
        return results

    def upload_job(self, desc: UploadDescriptor[R]) -> Job[R]:
        """The upload transfer's job: upload with retries and a stall watchdog."""
        return self._guarded.job(desc.upload, desc.close, desc.id(), f"pushing layer {desc.id()}")
