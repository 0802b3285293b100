"""One blob from a source to a destination: the step every image move repeats per blob.

:class:`BlobMove` asks the destination to reuse the blob (present, HEAD, mount) and otherwise
hands it the source's bytes through :class:`~lorry.ops.blob_stream.BlobFetch`, in one worker
thread, reporting progress in the words of the command that runs it (:class:`Words`: pull's
``Downloading``, push's ``Pushing``, copy's ``Copying``) when :class:`ByteThrottle` says so.
The destination's writer verifies every byte (transports/protocols.py, "Who verifies").

Failures: a digest mismatch is final unless the attempt resumed or reconnected, whose earlier
bytes may be the bad ones: then it is retried from zero (moby's rule, xfer-spec §2.9; the
destination dropped the partial data). Cancellation cuts the stream the worker may be blocked
on and waits, briefly, for the worker to put the destination's writer down, so a cancelled
move never holds a lock for a socket timeout.

:class:`BlobCopy` is the :class:`~lorry.transfer.UploadDescriptor` of a move (copy, push);
the store's layer chain uses :class:`BlobMove` through :mod:`lorry.ops.layer_chain`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from functools import partial

import anyio
import anyio.from_thread
import anyio.to_thread

from lorry.digest import DiffID
from lorry.errors import CancelledError, IntegrityError, UnavailableError
from lorry.oci import Descriptor
from lorry.ops.blob_stream import BlobFetch, Emit, thread_emitter, thread_poster
from lorry.ops.session import SessionLease
from lorry.progress import ByteThrottle, ProgressEvent
from lorry.transfer import TransferProgress, statuses, upload_key
from lorry.transports import ImageDestination, ImageSource, Mounted, Reuse, Skipped
from lorry.transports.registry import RegistryDestination

__all__ = ["COPY_WORDS", "PULL_WORDS", "PUSH_WORDS", "BlobCopy", "BlobMove", "Words"]

_WAIT_REPORT_EVERY = 50  # ingest-lock polls (20 ms each) between "Waiting" reports
_ABORT_WAIT = 10.0  # seconds a cancelled move waits for its thread to put the writer down


@dataclass(frozen=True)
class Words:
    """The progress vocabulary of one command (docker's and skopeo's words)."""

    moving: str
    done: str
    reused: str
    #: Said after the last byte, before the destination's check ends (pull only).
    verifying: str | None = None
    #: Whether a line says ``moving`` at 0 bytes before the first chunk (docker's pull: no).
    from_zero: bool = True


PULL_WORDS = Words(
    statuses.DOWNLOADING,
    statuses.DOWNLOAD_COMPLETE,
    statuses.DOWNLOAD_COMPLETE,
    statuses.VERIFYING_CHECKSUM,
    from_zero=False,
)
PUSH_WORDS = Words(statuses.PUSHING, statuses.PUSHED, statuses.LAYER_ALREADY_EXISTS)
COPY_WORDS = Words(statuses.COPYING, statuses.COPIED, statuses.LAYER_ALREADY_EXISTS)


class BlobMove:
    """Make ``desc`` exist at ``dest``, reading ``source`` only if it must (see module doc)."""

    def __init__(
        self,
        source: ImageSource,
        dest: ImageDestination,
        desc: Descriptor,
        *,
        words: Words = COPY_WORDS,
        line_id: str | None = None,
    ) -> None:
        self.source = source
        self.dest = dest
        self.desc = desc
        self.words = words
        self.line_id = line_id or desc.digest.short
        self._fetches: list[BlobFetch] = []
        self._lock = threading.Lock()
        #: How the last run settled: None (sent), True (present), Mounted or Skipped.
        self.reused: Reuse = False

    async def run(self, progress: TransferProgress) -> str:
        """Reuse or send the blob in a worker thread; report and return the final status."""
        emit = thread_emitter(progress)
        post = thread_poster()
        finished = threading.Event()
        with ExitStack() as exempt:
            settled = False

            def exempt_rest() -> None:  # on the loop: unless the attempt is already over
                if not settled:
                    exempt.enter_context(progress.exempt())

            def on_end() -> None:  # the destination now checks and commits: no bytes flow
                post(exempt_rest)

            try:
                status = await anyio.to_thread.run_sync(
                    self._run, emit, on_end, finished, abandon_on_cancel=True
                )
            except anyio.get_cancelled_exc_class():
                self.abort()
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(finished.wait, _ABORT_WAIT)
                raise
            finally:
                settled = True
        progress.emit(ProgressEvent(self.line_id, status))
        return status

    def abort(self) -> None:
        """Cut every stream a running or abandoned attempt reads."""
        with self._lock:
            for fetch in self._fetches:
                fetch.abort()

    # -- the worker thread --------------------------------------------------------------------

    def _run(self, emit: Emit, on_end: Callable[[], None], finished: threading.Event) -> str:
        try:
            self.reused = self.dest.reuse_blob(self.desc)
            if self.reused:
                return self._reused_status(emit)
            resumed = threading.Event()
            try:
                self.dest.put_blob(
                    self.desc,
                    partial(self._chunks, emit, on_end, resumed),
                    self._on_wait(emit),
                )
            except IntegrityError as exc:
                if resumed.is_set():
                    raise UnavailableError(
                        f"blob {self.desc.digest}: {exc}; the resumed data is discarded, "
                        "retrying from the start"
                    ) from exc
                raise
            return self.words.done
        finally:
            finished.set()

    def _reused_status(self, emit: Emit) -> str:
        reused = self.reused
        if isinstance(reused, Mounted):
            return statuses.mounted_from(reused.repository)
        if isinstance(reused, Skipped):
            return statuses.SKIPPED_FOREIGN_LAYER
        if self.words.verifying:
            emit(ProgressEvent(self.line_id, self.words.verifying))
        return self.words.reused

    def _chunks(
        self, emit: Emit, on_end: Callable[[], None], resumed: threading.Event, offset: int
    ) -> Iterator[bytes]:
        """The source blob from ``offset``, reporting progress as it goes."""
        desc = self.desc
        fetch = BlobFetch(
            lambda at: self.source.open_blob(desc, at),
            size=desc.size,
            check=anyio.from_thread.check_cancelled,
        )
        with self._lock:
            self._fetches.append(fetch)
        if offset:
            resumed.set()
        throttle = ByteThrottle(desc.size, offset)
        done = offset
        if offset or self.words.from_zero:
            emit(ProgressEvent(self.line_id, self.words.moving, done, desc.size))
        with closing(fetch.chunks(offset)) as chunks:  # the stream closes on any error
            for chunk in chunks:
                done += len(chunk)
                if fetch.reconnects:
                    resumed.set()
                if throttle.due(done):
                    emit(ProgressEvent(self.line_id, self.words.moving, done, desc.size))
                if done >= desc.size:
                    on_end()
                yield chunk
        if self.words.verifying:
            emit(ProgressEvent(self.line_id, self.words.verifying))

    def _on_wait(self, emit: Emit) -> Callable[[], None]:
        """The destination's lock-wait hook: cancellable, and says ``Waiting`` now and then."""
        polls = 0

        def on_wait() -> None:
            nonlocal polls
            anyio.from_thread.check_cancelled()
            if polls % _WAIT_REPORT_EVERY == 0:  # another process is writing this blob
                emit(ProgressEvent(self.line_id, statuses.WAITING))
            polls += 1

        return on_wait


class BlobCopy:
    """One blob of a copy or push as an :class:`~lorry.transfer.UploadDescriptor`.

    ``line_id`` names its progress line (push: the layer's DiffID, as docker shows it).
    ``lease`` (of the registry session the source or destination uses) is held until
    :meth:`close`: a shared transfer may outlive the copy that started it.
    """

    def __init__(
        self,
        source: ImageSource,
        dest: ImageDestination,
        desc: Descriptor,
        *,
        words: Words = COPY_WORDS,
        line_id: str | None = None,
        lease: SessionLease | None = None,
    ) -> None:
        if lease is not None:
            lease.acquire()
        self._lease = lease
        self.move = BlobMove(source, dest, desc, words=words, line_id=line_id)
        self.desc = desc
        self._closed = False

    def key(self) -> str:
        """Destination + digest: two moves of a blob to one place share one transfer."""
        dest = self.move.dest
        if isinstance(dest, RegistryDestination):  # every tag of a repository is one place
            return upload_key(dest.client.registry, dest.client.repository, self.desc.digest)
        return f"copy:{dest.name}@{self.desc.digest}"

    def id(self) -> str:
        """The progress line's id."""
        return self.move.line_id

    def diff_id(self) -> DiffID:
        """The upload manager's name for the line: here, the blob digest."""
        return DiffID(self.desc.digest)

    @property
    def mounted_from(self) -> str | None:
        """The repository the blob was mounted from, if it was."""
        reused = self.move.reused
        return reused.repository if isinstance(reused, Mounted) else None

    def close(self) -> None:
        """Cut any stream an abandoned attempt still reads; give back the session (once)."""
        self.move.abort()
        if not self._closed:
            self._closed = True
            if self._lease is not None:
                self._lease.release()

    async def upload(self, progress: TransferProgress) -> Descriptor:
        """Reuse the blob at the destination, or stream it there."""
        if self._closed:
            raise CancelledError(f"blob {self.desc.digest}: transfer closed")
        await self.move.run(progress)
        return self.desc
