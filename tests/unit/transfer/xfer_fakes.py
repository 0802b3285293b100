"""Small fakes for the transfer-layer tests: a clock, a recording sink, gates."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import anyio.lowlevel

from lorry.progress import ProgressEvent


class FakeClock:
    """A clock whose time only moves when someone sleeps (auto) or the test advances it.

    ``auto=True``: ``sleep(d)`` adds ``d`` to the time and returns after one checkpoint, so
    retry delays cost nothing. ``auto=False``: ``sleep`` blocks until :meth:`advance` passes
    its deadline. Every requested sleep is recorded in ``sleeps``.
    """

    def __init__(self, *, auto: bool = True) -> None:
        self.auto = auto
        self.time = 1000.0
        self.sleeps: list[float] = []
        self._waiters: list[tuple[float, anyio.Event]] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.auto:
            self.time += seconds
            await anyio.lowlevel.checkpoint()
            return
        ev = anyio.Event()
        self._waiters.append((self.time + seconds, ev))
        await ev.wait()

    def advance(self, seconds: float) -> None:
        self.time += seconds
        due = [w for w in self._waiters if w[0] <= self.time]
        self._waiters = [w for w in self._waiters if w[0] > self.time]
        for _, ev in due:
            ev.set()


@dataclass
class RecordingSink:
    """Records events; fails the test if written after it was closed (released)."""

    events: list[ProgressEvent] = field(default_factory=list)
    closed: bool = False
    first: anyio.Event = field(default_factory=anyio.Event)

    def emit(self, event: ProgressEvent) -> None:
        assert not self.closed, f"sink written after release: {event}"
        self.events.append(event)
        self.first.set()

    def for_id(self, line_id: str) -> list[ProgressEvent]:
        return [e for e in self.events if e.id == line_id]

    def statuses(self, line_id: str) -> list[str]:
        out: list[str] = []
        for e in self.for_id(line_id):
            if not out or out[-1] != e.status:
                out.append(e.status)
        return out


def progress(line_id: str, n: int, total: int = 10) -> ProgressEvent:
    return ProgressEvent(id=line_id, status="Downloading", current=n, total=total)
