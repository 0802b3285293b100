"""Pull's layer stage: the download descriptor of one registry blob and the layer-store adapter.

The byte path (DESIGN.md §1.2) is one loop in one worker thread per layer: read 1 MiB chunks
from the registry starting at the ingest's offset (:class:`~lorry.ops.blob_stream.BlobFetch`,
the byte path every image move shares), hand each to the store's ingest writer —
which appends it, hashes it and inflates + hashes it for the DiffID in the same pass — and
report ``Downloading`` only when :class:`ByteThrottle` says so. ``commit`` then checks size and
digest before the blob becomes visible. Nothing is held in memory beyond one chunk.

Failures: a dropped connection after some progress reconnects at once from the exact offset
(a few times); other retryable errors go back to the transfer's retry policy, whose next
attempt resumes from the partial ingest. A digest mismatch deletes the partial data (the
writer's ``commit`` does it) and is final — unless the attempt had resumed earlier bytes, which
may be the bad ones: then it is retried once from zero (moby's rule, xfer-spec §2.9).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass

import anyio
import anyio.from_thread
import anyio.to_thread

from lorry.digest import ChainID, DiffID, Digest
from lorry.errors import IntegrityError, UnavailableError
from lorry.ops._pull_progress import downloading
from lorry.ops.blob_stream import BlobFetch, Emit, thread_emitter
from lorry.ops.session import SessionLease
from lorry.progress import ByteThrottle, ProgressEvent
from lorry.reference import Reference
from lorry.registry.client import RegistryClient
from lorry.store import Store
from lorry.store.layers import Layer
from lorry.store.protocols import BlobWriter
from lorry.transfer import statuses as st
from lorry.transfer.protocols import ExtractProgress, TransferProgress, blob_key

__all__ = ["FetchedLayer", "LayerSource", "RegistryLayer", "StoreLayers"]

_WAIT_REPORT_EVERY = 50  # ingest-lock polls (20 ms each) between "Waiting" reports
_ABORT_WAIT = 10.0  # seconds a cancelled download waits for its thread to close the ingest


@dataclass(frozen=True, slots=True)
class LayerSource:
    """Where one layer blob comes from and what it must turn out to be."""

    digest: Digest
    media_type: str
    size: int | None
    urls: tuple[str, ...] = ()
    #: The DiffID the image config lists for this layer (None for schema1: nothing to check).
    expected_diff_id: DiffID | None = None
    #: The DiffID the store computed for this blob before, if any (for ``Already exists``).
    known_diff_id: DiffID | None = None


@dataclass(frozen=True, slots=True)
class FetchedLayer:
    """The handle a finished download hands to the layer store: a committed, verified blob."""

    digest: Digest
    media_type: str
    size: int
    diff_id: DiffID


class RegistryLayer:
    """The :class:`~lorry.transfer.protocols.DownloadDescriptor` of one layer of a pull."""

    def __init__(
        self, source: LayerSource, *, store: Store, lease: SessionLease, ref: Reference
    ) -> None:
        self.source = source
        self._store = store
        self._lease = lease
        self._client: RegistryClient = lease.acquire().client_for(ref)
        self._closed = False
        #: The DiffID the layer store reported (set by :meth:`registered`).
        self.registered_diff_id: DiffID | None = None

    def key(self) -> str:
        """The blob's dedup key: every pull in the process shares one fetch of it."""
        return blob_key(self.source.digest)

    def id(self) -> str:
        """The 12-hex display id of the blob."""
        return self.source.digest.short

    def diff_id(self) -> DiffID | None:
        """The DiffID the store computed for this blob before (never the config's claim)."""
        return self.source.known_diff_id

    def registered(self, diff_id: DiffID) -> None:
        """Remember the layer's DiffID; the pull records distribution metadata later."""
        self.registered_diff_id = diff_id

    def close(self) -> None:
        """Give back this descriptor's reference on the registry session (once)."""
        if not self._closed:
            self._closed = True
            self._lease.release()

    async def download(self, progress: TransferProgress) -> FetchedLayer:
        """Fetch, verify and commit the blob into the content store (in a worker thread).

        Cancellation (Ctrl-C, the stall watchdog, the last watcher letting go) cuts the
        connection the worker may be blocked on and waits, briefly, for the worker to put the
        ingest down: a stalled network never holds a cancelled pull for a socket timeout.
        """
        src = self.source
        fetch = BlobFetch(
            lambda offset: self._client.open_blob(src.digest, offset, size=src.size, urls=src.urls),
            size=src.size,
            check=anyio.from_thread.check_cancelled,
        )
        finished = threading.Event()
        try:
            return await anyio.to_thread.run_sync(
                self._download, thread_emitter(progress), fetch, finished, abandon_on_cancel=True
            )
        except anyio.get_cancelled_exc_class():
            fetch.abort()
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(finished.wait, _ABORT_WAIT)
            raise

    # -- the worker thread --------------------------------------------------------------------

    def _download(self, emit: Emit, fetch: BlobFetch, finished: threading.Event) -> FetchedLayer:
        try:
            return self._fetch(emit, fetch)
        finally:
            finished.set()

    def _fetch(self, emit: Emit, fetch: BlobFetch) -> FetchedLayer:
        src = self.source
        writer = self._store.content.writer(
            src.digest, src.size, media_type=src.media_type, on_wait=self._on_wait(emit)
        )
        with writer:
            resumed = writer.resumed > 0
            try:
                if not writer.exists:
                    resumed = self._fill(writer, emit, fetch) or resumed
                emit(ProgressEvent(id=self.id(), status=st.VERIFYING_CHECKSUM))
                info = writer.commit()
            except IntegrityError as exc:
                writer.abort()  # never resume from bytes that failed a check
                if resumed:
                    raise UnavailableError(
                        f"layer blob {src.digest}: {exc}; the resumed data is discarded, "
                        "retrying from the start"
                    ) from exc
                raise
        emit(ProgressEvent(id=self.id(), status=st.DOWNLOAD_COMPLETE))
        diff = info.diff_id
        if diff is None:  # committed earlier without a layer media type
            diff = self._store.content.layer_info(src.digest, src.media_type).diff_id
        assert diff is not None
        if src.expected_diff_id is not None and diff != src.expected_diff_id:
            raise IntegrityError(
                f"layer blob {src.digest}: its DiffID {diff} does not match the image "
                f"configuration's {src.expected_diff_id}"
            )
        return FetchedLayer(src.digest, src.media_type, info.size, diff)

    def _fill(self, writer: BlobWriter, emit: Emit, fetch: BlobFetch) -> bool:
        """Stream the rest of the blob into ``writer``; True if it reconnected mid-way."""
        throttle = ByteThrottle(fetch.size, writer.offset)
        if writer.offset:
            emit(downloading(self.id(), writer.offset, fetch.size))
        with closing(fetch.chunks(writer.offset)) as chunks:  # the stream closes on any error
            for chunk in chunks:
                writer.write(chunk)
                throttle.total = fetch.size
                if throttle.due(writer.offset):
                    emit(downloading(self.id(), writer.offset, fetch.size))
        return fetch.reconnects > 0

    def _on_wait(self, emit: Emit) -> Callable[[], None]:
        """The ingest-lock wait hook: cancellable, and says ``Waiting`` now and then."""
        polls = 0

        def on_wait() -> None:
            nonlocal polls
            anyio.from_thread.check_cancelled()
            if polls % _WAIT_REPORT_EVERY == 0:  # another process is fetching this blob
                emit(ProgressEvent(id=self.id(), status=st.WAITING))
            polls += 1

        return on_wait


class StoreLayers:
    """The local layer store as the download manager's :class:`LayerStoreLike`.

    The store keeps persistent reference counts (child layers and images), not in-memory
    handles: a running pull keeps its layers from ``prune`` with :meth:`Store.hold`, so
    ``release`` has nothing to do.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, chain_id: ChainID) -> Layer | None:
        """The registered layer with this ChainID, or None."""
        return await anyio.to_thread.run_sync(self.store.layers.find, chain_id)

    async def register(
        self, handle: FetchedLayer, parent: ChainID | None, progress: ExtractProgress
    ) -> Layer:
        """Register the committed blob on top of ``parent`` (its DiffID is already known)."""

        def register() -> Layer:
            return self.store.layers.register(handle.digest, parent, media_type=handle.media_type)

        layer = await anyio.to_thread.run_sync(register)
        progress(handle.size, handle.size)
        return layer

    async def release(self, layer: Layer) -> None:
        """Nothing to drop: see the class docstring."""
