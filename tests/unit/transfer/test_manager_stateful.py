"""A hypothesis state machine driving random interleavings against one TransferManager.

Rules: watch, release, cancel (release every watcher of a transfer), attach late to a finished
transfer, and — for each running job — progress, success, failure, going inactive; plus limit
changes. The manager lives on an event loop in a portal thread; after every rule the loop is
run until every task is blocked, so each step is deterministic. Checked after every step:
running jobs never exceed the limit, one key never has two jobs running at once, the slot count
matches the jobs actually holding a slot, no sink is written after its release, and every
watcher that saw a transfer end has that transfer's final status as its last event. At the end
the manager is closed and no job or task may be left running.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.from_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from lorry.errors import UnavailableError
from lorry.progress import ProgressEvent
from lorry.transfer.manager import Transfer, TransferContext, TransferManager, Watcher

KEYS = ("a", "b", "c")


@dataclass
class Ctl:
    """Test-side control of one job."""

    key: str
    serial: int
    send: MemoryObjectSendStream[str]
    recv: MemoryObjectReceiveStream[str]
    started: bool = False
    inactive: bool = False
    ended: bool = False
    final: ProgressEvent | None = None

    @property
    def holds_slot(self) -> bool:
        return self.started and not self.inactive and not self.ended


@dataclass
class Sink:
    events: list[ProgressEvent] = field(default_factory=list)
    closed: bool = False
    late_writes: int = 0

    def emit(self, event: ProgressEvent) -> None:
        if self.closed:
            self.late_writes += 1
        self.events.append(event)


@dataclass
class Watch:
    watcher: Watcher[int]
    sink: Sink
    released_before_end: bool = False


class TransferMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.portal_cm = anyio.from_thread.start_blocking_portal("asyncio")
        self.portal = self.portal_cm.__enter__()
        self.ctls: list[Ctl] = []
        self.ctl_of: dict[int, Ctl] = {}
        self.watches: list[Watch] = []
        self.transfers: list[Transfer[int]] = []
        self.violations: list[str] = []
        self.closed = False

    # -- plumbing ------------------------------------------------------------------------

    def settle(self) -> None:
        self.portal.call(anyio.wait_all_tasks_blocked)

    def make_job(self, key: str) -> Any:
        def job(ctx: TransferContext) -> Any:
            send, recv = anyio.create_memory_object_stream[str](math.inf)
            ctl = Ctl(key, len(self.ctls), send, recv)
            self.ctls.append(ctl)
            self.new_ctl = ctl
            return self.run_job(ctx, ctl)

        return job

    async def run_job(self, ctx: TransferContext, ctl: Ctl) -> int:
        if any(c.key == ctl.key and c.started and not c.ended for c in self.ctls):
            self.violations.append(f"two jobs running for key {ctl.key}")
        ctl.started = True
        holding = sum(c.holds_slot for c in self.ctls)
        if self.mgr.limit and holding > self.mgr.limit:
            self.violations.append(f"{holding} jobs hold a slot under limit {self.mgr.limit}")
        ctx.emit(ProgressEvent(id=ctl.key, status=f"start-{ctl.serial}"))
        steps = 0
        try:
            async for cmd in ctl.recv:
                if cmd == "progress":
                    steps += 1
                    ctx.emit(ProgressEvent(id=ctl.key, status="p", current=steps))
                elif cmd == "inactive":
                    ctl.inactive = True
                    ctx.set_inactive()
                else:
                    ctl.final = ProgressEvent(id=ctl.key, status=f"{cmd}-{ctl.serial}")
                    ctx.emit(ctl.final)
                    if cmd == "fail":
                        raise UnavailableError(f"job {ctl.serial} failed")
                    return ctl.serial
            raise AssertionError("command stream closed")
        finally:
            ctl.ended = True

    def running(self) -> list[Ctl]:
        return [c for c in self.ctls if c.started and not c.ended]

    def command(self, index: int, cmd: str) -> None:
        ctl = self.running()[index % len(self.running())]
        if cmd == "inactive" and ctl.inactive:
            return
        ctl.send.send_nowait(cmd)
        self.settle()

    # -- rules ---------------------------------------------------------------------------

    @initialize(limit=st.integers(0, 3))
    def open_manager(self, limit: int) -> None:
        self.mgr_cm = self.portal.wrap_async_context_manager(TransferManager(limit))
        self.mgr = self.mgr_cm.__enter__()
        self.allowed = limit

    @rule(key=st.sampled_from(KEYS))
    def watch(self, key: str) -> None:
        sink = Sink()
        self.new_ctl = None
        w = self.portal.call(self.mgr.watch, key, self.make_job(key), sink)
        assert w.is_creator == (self.new_ctl is not None)
        if w.is_creator:
            self.ctl_of[id(w.transfer)] = self.new_ctl
            self.transfers.append(w.transfer)
        self.watches.append(Watch(w, sink))
        self.settle()

    def live_watches(self) -> list[Watch]:
        return [w for w in self.watches if not w.watcher.released]

    def release_watch(self, watch: Watch) -> None:
        watch.released_before_end = not watch.watcher.transfer.is_done
        self.portal.call(watch.watcher.release)
        watch.sink.closed = True

    @precondition(lambda self: self.live_watches())
    @rule(i=st.integers(0, 50))
    def release(self, i: int) -> None:
        live = self.live_watches()
        self.release_watch(live[i % len(live)])
        self.settle()

    @precondition(lambda self: self.live_watches())
    @rule(i=st.integers(0, 50))
    def cancel(self, i: int) -> None:
        live = self.live_watches()
        target = live[i % len(live)].watcher.transfer
        for watch in live:
            if watch.watcher.transfer is target:
                self.release_watch(watch)
        self.settle()

    @precondition(lambda self: any(t.is_done for t in self.transfers))
    @rule(i=st.integers(0, 50))
    def attach_late(self, i: int) -> None:
        done = [t for t in self.transfers if t.is_done]
        sink = Sink()
        self.watches.append(Watch(done[i % len(done)].watch(sink), sink))

    @precondition(lambda self: self.running())
    @rule(i=st.integers(0, 50), cmd=st.sampled_from(["progress", "inactive", "succeed", "fail"]))
    def drive_job(self, i: int, cmd: str) -> None:
        self.command(i, cmd)

    @rule(limit=st.integers(0, 3))
    def set_limit(self, limit: int) -> None:
        self.portal.call(self.mgr.set_limit, limit)
        self.allowed = 0 if limit == 0 else max(limit, self.mgr.active)
        self.settle()

    # -- invariants ----------------------------------------------------------------------

    @invariant()
    def no_violations(self) -> None:
        assert self.violations == []
        assert all(w.sink.late_writes == 0 for w in self.watches)

    @invariant()
    def slots_match_jobs(self) -> None:
        if self.closed or not hasattr(self, "mgr"):
            return
        holding = sum(c.holds_slot for c in self.ctls)
        assert self.mgr.active == holding
        if self.allowed:
            assert holding <= self.allowed
            self.allowed = max(self.mgr.limit, holding) if self.mgr.limit else 0

    @invariant()
    def cancelled_exactly_when_unwatched(self) -> None:
        if self.closed:
            return
        for t in self.transfers:
            if t.is_done:
                continue
            if t.watcher_count:
                assert not t.cancel_requested
            else:
                assert t.is_done  # the last release cancelled it, and the job acknowledged

    @invariant()
    def final_status_is_last(self) -> None:
        for watch in self.watches:
            t = watch.watcher.transfer
            ctl = self.ctl_of[id(t)]
            if t.is_done and not watch.released_before_end and ctl.final is not None:
                assert watch.sink.events and watch.sink.events[-1] == ctl.final

    def teardown(self) -> None:
        try:
            if hasattr(self, "mgr"):
                self.closed = True
                self.mgr_cm.__exit__(None, None, None)
                assert all(c.ended for c in self.ctls if c.started)
                assert self.mgr.live_keys == [] and self.mgr.active == 0
                for watch in self.watches:
                    self.portal.call(watch.watcher.release)
                others = self.portal.call(_other_tasks)
                assert others == [], others
                assert all(t.is_released for t in self.transfers)
        finally:
            self.portal_cm.__exit__(None, None, None)


async def _other_tasks() -> list[str]:
    me = asyncio.current_task()
    return [
        repr(t.get_coro())
        for t in asyncio.all_tasks()
        if t is not me and "run_portal" not in repr(t.get_coro())
    ]


TransferMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
test_transfer_manager_state_machine = TransferMachine.TestCase
