"""The push's :class:`~lorry.transfer.UploadDescriptor`: one layer blob to one repository.

The upload manager runs :meth:`LayerPush.upload` under an upload slot, with retries and a stall
watchdog. The descriptor reports ``Pushing`` progress and exactly one final status, and records
the target repository in distribution metadata once the blob is there, so the next push can
skip or mount it (xfer-spec §4.7). Blocking work runs in worker threads; a cancelled attempt
abandons its thread, which stops at its next read of the blob file.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import TypeVar, TypeVarTuple

import anyio
import anyio.from_thread
import anyio.to_thread

from lorry import mediatypes as mt
from lorry.digest import DiffID, Digest
from lorry.errors import CancelledError
from lorry.oci import Descriptor
from lorry.ops.push_blob import BlobTarget, ProgressReader, reuse_blob, upload_blob
from lorry.ops.session import SessionLease
from lorry.progress import ProgressEvent
from lorry.registry.uploads import UploadSession
from lorry.transfer import TransferProgress, statuses, upload_key

__all__ = ["LayerPush"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class LayerPush:
    """Make one layer blob exist in the target repository (an UploadDescriptor[Descriptor]).

    ``diff_id`` is the layer's DiffID as the store computed it (None for a blob that is not a
    layer, e.g. an artifact); it keys distribution metadata and names the progress line.
    ``allow_foreign`` says whether non-distributable layers may be pushed to this registry.
    ``lease`` (of the session behind ``target.client``) is held until :meth:`close`.
    """

    def __init__(
        self,
        target: BlobTarget,
        desc: Descriptor,
        diff_id: Digest | None,
        *,
        allow_foreign: bool = False,
        lease: SessionLease | None = None,
    ) -> None:
        if lease is not None:
            lease.acquire()  # a shared transfer may outlive the push that created it
        self._lease = lease
        self.target = target
        self.desc = desc
        self._diff_id = diff_id
        self._allow_foreign = allow_foreign
        self._cancelled = threading.Event()
        self._closed = False
        #: The repository the blob was mounted from, once it was.
        self.mounted_from: str | None = None

    def key(self) -> str:
        """Registry + repository + blob digest: one upload per place, shared by pushes."""
        return upload_key(self.target.registry, self.target.repository, self.desc.digest)

    def id(self) -> str:
        """12 hex characters of the DiffID (of the blob digest for a non-layer blob)."""
        return (self._diff_id or self.desc.digest).short

    def diff_id(self) -> DiffID:
        """The layer's DiffID (the blob digest for a non-layer blob)."""
        return DiffID(self._diff_id or self.desc.digest)

    def close(self) -> None:
        """Stop any abandoned worker thread at its next read; give back the session."""
        if self._closed:
            return
        self._closed = True
        self._cancelled.set()
        if self._lease is not None:
            self._lease.release()

    async def upload(self, progress: TransferProgress) -> Descriptor:
        """Skip, find, mount or upload the blob; report the outcome; return its descriptor."""
        if self._closed:
            raise CancelledError(f"pushing layer {self.id()}: descriptor closed")
        self._cancelled = threading.Event()  # per attempt: a stalled attempt stops only itself
        if mt.is_foreign_layer(self.desc.media_type) and not self._allow_foreign:
            self._emit(progress, statuses.SKIPPED_FOREIGN_LAYER)
            return self.desc
        kind, detail = await self._thread(reuse_blob, self.target, self.desc, self._diff_id)
        if kind == "exists":
            status = statuses.LAYER_ALREADY_EXISTS
        elif kind == "mounted":
            assert isinstance(detail, str)
            self.mounted_from = detail
            status = statuses.mounted_from(detail)
        else:
            assert detail is None or isinstance(detail, UploadSession)
            await self._send(progress, detail)
            status = statuses.PUSHED
        if self._diff_id is not None and mt.is_layer(self.desc.media_type):
            await self._thread(self._record)
        self._emit(progress, status)
        return self.desc

    async def _send(self, progress: TransferProgress, session: UploadSession | None) -> None:
        """Stream the stored blob to the registry in a worker thread, reporting progress."""
        cancelled = self._cancelled
        with ExitStack() as exempt:

            def report(done: int) -> None:
                if not cancelled.is_set():
                    progress.emit(ProgressEvent(self.id(), statuses.PUSHING, done, self.desc.size))

            def on_end() -> None:
                # The registry now hashes and moves the blob: no bytes flow, no stall.
                if not cancelled.is_set():
                    anyio.from_thread.run_sync(exempt.enter_context, progress.exempt())

            def send() -> None:
                with self.target.store.content.open_blob(self.desc.digest) as f:
                    reader = ProgressReader(
                        f, self.desc.size, report=report, on_end=on_end, cancelled=cancelled
                    )
                    upload_blob(self.target, self.desc, session, reader)

            progress.emit(ProgressEvent(self.id(), statuses.PUSHING, 0, self.desc.size))
            await self._thread(send)

    def _record(self) -> None:
        """Remember that the target repository has this blob (for skipping and mounting)."""
        assert self._diff_id is not None
        self.target.store.distmeta.record(
            self._diff_id, self.desc.digest, self.target.registry, self.target.repository
        )

    def _emit(self, progress: TransferProgress, status: str) -> None:
        progress.emit(ProgressEvent(self.id(), status))

    async def _thread(self, fn: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run blocking ``fn`` in a worker thread; on cancellation abandon and stop it."""
        cancelled = self._cancelled
        try:
            return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise
