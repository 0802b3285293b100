"""The transfer manager: one shared, limited, cancellable transfer per key (xfer-spec §1).

How it works, in one paragraph. Work is identified by a string **key** chosen by the layer
above (a blob digest for a download, registry + repository + digest for an upload); the manager
never interprets it. :meth:`TransferManager.watch` either attaches the caller, as a new
**watcher**, to the live transfer under that key, or creates the transfer and starts its **job**.
Every attached watcher receives each progress event through its own sink as it is emitted
(sinks must not block; xfer-spec §1.3); a watcher that attaches late first receives the latest
event — the current state — and then only newer ones. Nobody cancels a transfer directly: each
caller **releases** its watcher when it no longer needs the result, and only when the last
watcher has let go is the transfer cancelled, so one caller's Ctrl-C never kills work another
caller is still waiting for. A caller that arrives while a transfer is being cancelled waits
for it to end and then gets a fresh one. A transfer ends and leaves the map in one step (there
is no result cache), so a caller either joins in time to see the final status or starts anew;
the result stays readable through the watchers, attaching to a finished :class:`Transfer`
object directly delivers its final status, and the hooks registered with
:meth:`Transfer.on_released` run once it has ended *and* every watcher has released it. A hook
that releases another transfer (a layer lets go of its parent) does not run that transfer's
hooks inside its own: they are queued and run by the outermost release in the task, one after
another, so a chain of 10,000 layers is released in a loop, not 10,000 nested calls.
Transfers hold a **slot** under a concurrency limit (``0`` = unlimited); those that find none
free queue first-in first-out. A job that stops moving data before it is finished (say, a
downloaded layer waiting for its parent) calls :meth:`TransferContext.set_inactive` to hand its
slot to the next queued transfer. Jobs run in the manager's own task group, so closing the
manager cancels and awaits all of them.

A job is ``job(ctx) -> awaitable``. It is called synchronously inside ``watch`` when the transfer
is created (so it may attach to other transfers and register release hooks without racing);
the awaitable it returns is awaited only once the transfer holds a slot.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Generic, TypeVar, cast

import anyio
import anyio.abc
import anyio.from_thread

from lorry.errors import CancelledError
from lorry.progress import ProgressEvent, ProgressSink
from lorry.transfer.limits import check_limit

__all__ = ["Job", "ReleaseHook", "Transfer", "TransferContext", "TransferManager", "Watcher"]

T = TypeVar("T")
log = logging.getLogger(__name__)

#: A hook run once a transfer is finished and unwatched; may return an awaitable.
ReleaseHook = Callable[[], object]

#: The transfers whose hooks the current task's outermost release still has to run, with that
#: task's id (a task started from inside a hook inherits the variable, not the queue).
_RELEASING: ContextVar[tuple[int, deque[Transfer[Any]]] | None] = ContextVar(
    "lorry_transfer_releasing", default=None
)


class TransferContext:
    """What a running job sees of its transfer: progress out, slot hand-off, release hooks."""

    def __init__(self, transfer: Transfer[Any]) -> None:
        self._transfer = transfer
        self._thread = threading.get_ident()

    @property
    def key(self) -> str:
        """The transfer's key."""
        return self._transfer.key

    @property
    def cancel_requested(self) -> bool:
        """True once every watcher has let go (the job is being cancelled)."""
        return self._transfer.cancel_requested

    def emit(self, event: ProgressEvent) -> None:
        """Publish progress to every watcher; callable from the loop or an anyio worker thread."""
        if threading.get_ident() == self._thread:
            self._transfer._publish(event)
        else:
            anyio.from_thread.run_sync(self._transfer._publish, event)

    def set_inactive(self) -> None:
        """Give the slot to the next queued transfer while this job goes on without it."""
        self._transfer._manager._give_back(self._transfer)

    def on_released(self, hook: ReleaseHook) -> None:
        """Run ``hook`` once the transfer has finished and no watcher holds it."""
        self._transfer.on_released(hook)


#: A job: called synchronously when its transfer is created; the awaitable runs once it has a slot.
Job = Callable[[TransferContext], Awaitable[T]]


class Transfer(Generic[T]):
    """One unit of shared work: its progress, watchers, slot state and outcome."""

    def __init__(self, key: str, manager: TransferManager) -> None:
        self.key = key
        self._manager = manager
        self._watchers: list[Watcher[T]] = []
        self._latest: ProgressEvent | None = None
        self._done = anyio.Event()
        self._finished = False
        self._value: T | None = None
        self._error: BaseException | None = None
        self._scope = anyio.CancelScope()
        self._started = anyio.Event()
        self._slot = "none"  # "queued", "active" or "none"
        self.cancel_requested = False
        self._hooks: list[ReleaseHook] = []
        self._released = False

    @property
    def is_done(self) -> bool:
        """True once the job has ended (successfully, with an error, or cancelled)."""
        return self._finished

    @property
    def is_released(self) -> bool:
        """True once the transfer is done and every watcher has released it."""
        return self._released

    @property
    def watcher_count(self) -> int:
        """How many watchers are attached."""
        return len(self._watchers)

    @property
    def latest(self) -> ProgressEvent | None:
        """The most recent progress event."""
        return self._latest

    def watch(self, sink: ProgressSink) -> Watcher[T]:
        """Attach a watcher to this very transfer, even if it is done (it then gets the final
        status and the result). Prefer :meth:`TransferManager.watch`, which never joins a
        transfer being cancelled."""
        w = Watcher(self, sink, is_creator=False)
        self._watchers.append(w)
        if self._latest is not None:
            w._deliver(self._latest)
        return w

    async def wait_done(self) -> None:
        """Wait until the job has ended."""
        await self._done.wait()

    def outcome(self) -> T:
        """The result of a finished transfer; raise its error (CancelledError if cancelled)."""
        if not self._finished:
            raise CancelledError(f"transfer {self.key}: result read before the transfer ended")
        if self._error is not None:
            raise self._error
        return cast(T, self._value)

    def on_released(self, hook: ReleaseHook) -> None:
        """Run ``hook`` once the transfer has finished and no watcher holds it."""
        if not self._released:
            self._hooks.append(hook)
            return
        result = hook()
        if inspect.isawaitable(result):
            self._manager._spawn(_await_shielded, result)

    def _publish(self, event: ProgressEvent) -> None:
        if self._finished:
            return
        self._latest = event
        for w in list(self._watchers):
            w._deliver(event)

    async def _fire_released(self) -> None:
        """Run the release hooks once the transfer is done and unwatched; iteratively.

        Inside another transfer's hook (same task) the transfer is only queued: the
        outermost call drains the queue, so the stack stays flat however long the chain.
        """
        if self._released or self._watchers or not self._finished:
            return
        self._released = True
        task = anyio.get_current_task().id
        running = _RELEASING.get()
        if running is not None and running[0] == task:
            running[1].append(self)
            return
        queue: deque[Transfer[Any]] = deque([self])
        token = _RELEASING.set((task, queue))
        try:
            with anyio.CancelScope(shield=True):
                while queue:
                    await queue.popleft()._run_hooks()
        finally:
            _RELEASING.reset(token)

    async def _run_hooks(self) -> None:
        """Run this transfer's hooks in order; a failing hook is logged, the rest still run."""
        hooks, self._hooks = self._hooks, []
        for hook in hooks:
            try:
                result = hook()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("release hook of transfer %s failed", self.key)


class Watcher(Generic[T]):
    """One consumer of one transfer; must be released exactly once (releasing is idempotent)."""

    def __init__(self, transfer: Transfer[T], sink: ProgressSink, *, is_creator: bool) -> None:
        self.transfer = transfer
        self.sink = sink
        self.is_creator = is_creator
        self.released = False
        self._last: ProgressEvent | None = None

    def _deliver(self, event: ProgressEvent) -> None:
        if self.released or event == self._last:
            return
        self._last = event
        try:
            self.sink.emit(event)
        except Exception:
            log.exception("progress sink failed on %s", event)

    async def result(self) -> T:
        """Wait for the transfer to end and return its result or raise its error."""
        await self.transfer.wait_done()
        return self.transfer.outcome()

    async def release(self) -> None:
        """Detach; the last release cancels a running transfer or runs its release hooks.

        Never raises cancellation itself, so it is safe in ``finally`` blocks; after it
        returns the sink receives nothing more.
        """
        if self.released:
            return
        self.released = True
        t = self.transfer
        t._watchers.remove(self)
        if t._watchers:
            return
        if not t.is_done:
            t._manager._request_cancel(t)
        else:
            await t._fire_released()

    async def __aenter__(self) -> Watcher[T]:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release()


async def _await_shielded(awaitable: Awaitable[object]) -> None:
    with anyio.CancelScope(shield=True):
        await awaitable


class TransferManager:
    """Deduplicates, limits and runs transfers; use as ``async with TransferManager(3) as m``."""

    def __init__(self, limit: int = 0, *, name: str = "transfer") -> None:
        self.name = name
        self._limit = check_limit(f"{name} concurrency", limit)
        self._transfers: dict[str, Transfer[Any]] = {}
        self._queue: deque[Transfer[Any]] = deque()
        self._active = 0
        self._runners = 0
        self._idle = anyio.Event()
        self._idle.set()
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False

    async def __aenter__(self) -> TransferManager:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> bool | None:
        return await self._close(*exc_info)

    async def aclose(self) -> None:
        """Cancel every transfer and wait for all of them to end."""
        await self._close(None, None, None)

    async def _close(self, *exc_info: Any) -> bool | None:
        if self._tg is None or self._closed:
            return None
        self._closed = True
        self._tg.cancel_scope.cancel()
        return await self._tg.__aexit__(*exc_info)

    @property
    def limit(self) -> int:
        """The current concurrency limit (0 = unlimited)."""
        return self._limit

    @property
    def active(self) -> int:
        """How many transfers hold a slot now."""
        return self._active

    @property
    def queued(self) -> int:
        """How many transfers wait for a slot."""
        return len(self._queue)

    @property
    def live_keys(self) -> list[str]:
        """Keys of the transfers currently in the map (running, queued or cancelling)."""
        return list(self._transfers)

    def peek(self, key: str) -> Transfer[Any] | None:
        """The live transfer under ``key`` that a watch would join now, if any."""
        live = self._transfers.get(key)
        return None if live is None or live.cancel_requested else live

    def set_limit(self, limit: int) -> None:
        """Change the limit at run time; a raised limit starts queued transfers at once, a
        lowered one lets running transfers finish and starts no new one until below it."""
        self._limit = check_limit(f"{self.name} concurrency", limit)
        self._fill()

    async def wait_idle(self) -> None:
        """Wait until no transfer is running and every release hook they triggered has run."""
        while self._runners:
            await self._idle.wait()

    async def watch(
        self,
        key: str,
        job: Job[T],
        sink: ProgressSink,
        *,
        waiting: ProgressEvent | None = None,
    ) -> Watcher[T]:
        """Attach to the live transfer under ``key`` or start ``job`` as a new one.

        ``waiting`` is published as the transfer's first event when it has to queue for a
        slot (the download manager passes ``Waiting``). The watcher's ``is_creator`` says
        whether this call created the transfer (and so called ``job``).
        """
        while True:
            if self._closed or self._tg is None:
                raise CancelledError(f"{self.name} manager is closed")
            live = self._transfers.get(key)
            if live is None:
                break
            if not live.cancel_requested:
                return cast(Watcher[T], live.watch(sink))
            await live.wait_done()
        t: Transfer[T] = Transfer(key, self)
        awaitable = job(TransferContext(t))
        self._transfers[key] = t
        t._slot = "queued"
        self._queue.append(t)
        self._fill()
        if t._slot == "queued" and waiting is not None:
            t._publish(waiting)
        self._spawn(self._run, t, awaitable)
        w = Watcher(t, sink, is_creator=True)
        t._watchers.append(w)
        if t._latest is not None:
            w._deliver(t._latest)
        return w

    def _spawn(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._tg is None:
            raise CancelledError(f"{self.name} manager is not running")
        self._runners += 1
        if self._idle.is_set():
            self._idle = anyio.Event()
        self._tg.start_soon(self._counted, func, *args)

    async def _counted(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        try:
            await func(*args)
        finally:
            self._runners -= 1
            if not self._runners:
                self._idle.set()

    async def _run(self, t: Transfer[T], awaitable: Awaitable[T]) -> None:
        awaited = ended = False
        try:
            with t._scope:
                await t._started.wait()
                awaited = True
                try:
                    t._value = await awaitable
                except Exception as exc:
                    t._error = exc
                ended = True
        finally:
            if not awaited and inspect.iscoroutine(awaitable):
                awaitable.close()
            if not ended:
                t._error = CancelledError(f"transfer {t.key} cancelled")
            self._finish(t)
            await t._fire_released()

    def _finish(self, t: Transfer[Any]) -> None:
        t._finished = True
        self._give_back(t)
        if self._transfers.get(t.key) is t:
            del self._transfers[t.key]
        t._done.set()

    def _give_back(self, t: Transfer[Any]) -> None:
        if t._slot == "active":
            self._active -= 1
        elif t._slot == "queued":
            self._queue.remove(t)
        t._slot = "none"
        self._fill()

    def _fill(self) -> None:
        while self._queue and (self._limit == 0 or self._active < self._limit):
            nxt = self._queue.popleft()
            nxt._slot = "active"
            self._active += 1
            nxt._started.set()

    def _request_cancel(self, t: Transfer[Any]) -> None:
        t.cancel_requested = True
        if t._slot == "queued":
            self._give_back(t)
        t._scope.cancel()
