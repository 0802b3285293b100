"""Small fakes for the transfer-layer tests: a clock, a recording sink, gates."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
import anyio.lowlevel

from lorry.digest import ChainID, DiffID, Digest
from lorry.errors import IntegrityError, NotFoundError, UnavailableError
from lorry.progress import ProgressEvent
from lorry.transfer.protocols import ExtractProgress, TransferProgress


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


progress_event = progress


# --- download fakes -------------------------------------------------------------------------


@dataclass(eq=False)
class FakeLayer:
    chain_id: ChainID
    diff_id: DiffID
    parent: FakeLayer | None
    refs: int = 1


class FakeLayerStore:
    """In-memory layer store with moby's refcounting: children keep parents alive."""

    def __init__(self) -> None:
        self.layers: dict[ChainID, FakeLayer] = {}
        self.register_order: list[DiffID] = []

    async def get(self, chain_id: ChainID, key: str = "") -> FakeLayer | None:
        await anyio.lowlevel.checkpoint()
        layer = self.layers.get(chain_id)
        if layer is not None:
            layer.refs += 1
        return layer

    async def register(
        self, handle: bytes, parent: ChainID | None, progress: ExtractProgress
    ) -> FakeLayer:
        await anyio.lowlevel.checkpoint()
        return self.register_now(handle, parent, progress)

    def register_now(
        self, handle: bytes, parent: ChainID | None, progress: ExtractProgress | None = None
    ) -> FakeLayer:
        parent_layer = None
        if parent is not None:
            parent_layer = self.layers.get(parent)
            if parent_layer is None:
                raise NotFoundError(f"layer {parent} does not exist")
        diff = DiffID(Digest.of(handle))
        cid = ChainID(diff if parent is None else Digest.of(f"{parent} {diff}".encode()))
        if progress is not None:
            progress(len(handle), len(handle))
        self.register_order.append(diff)
        existing = self.layers.get(cid)
        if existing is not None:
            existing.refs += 1
            return existing
        if parent_layer is not None:
            parent_layer.refs += 1
        layer = FakeLayer(cid, diff, parent_layer)
        self.layers[cid] = layer
        return layer

    async def release(self, layer: FakeLayer) -> None:
        self.release_now(layer)

    def release_now(self, layer: FakeLayer) -> None:
        assert layer.refs > 0, f"over-release of {layer.chain_id}"
        layer.refs -= 1
        if layer.refs == 0:
            del self.layers[layer.chain_id]
            if layer.parent is not None:
                self.release_now(layer.parent)


class Concurrency:
    """Counts concurrent downloads; fails the download (not retried) above ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.now = 0
        self.peak = 0

    def enter(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        if self.now > self.limit:
            raise IntegrityError("concurrency limit exceeded")

    def leave(self) -> None:
        self.now -= 1


class FakeDescriptor:
    """moby's mock descriptor: key = id = name, the 'tar' is the name repeated 5 times."""

    def __init__(
        self,
        name: str,
        *,
        diff_id: DiffID | None = None,
        fail_times: int = 0,
        error: type[Exception] = UnavailableError,
        counter: Concurrency | None = None,
        gate: anyio.Event | None = None,
    ) -> None:
        self.name = name
        self.tar = (name * 5).encode()
        self._diff_id = diff_id
        self.fail_times = fail_times
        self.error = error
        self.counter = counter
        self.gate = gate
        self.calls = 0
        self.registered_ids: list[DiffID] = []
        self.closed = 0

    def key(self) -> str:
        return self.name

    def id(self) -> str:
        return self.name

    def diff_id(self) -> DiffID | None:
        return self._diff_id

    async def download(self, progress: TransferProgress) -> bytes:
        if self.counter is not None:
            self.counter.enter()
        try:
            self.calls += 1
            if self.gate is not None:
                progress.emit(ProgressEvent(id=self.name, status="Downloading", current=0))
                await self.gate.wait()
            for n in range(11):
                progress.emit(progress_event(self.name, n))
                await anyio.lowlevel.checkpoint()
            if self.calls <= self.fail_times:
                raise self.error(f"simulating download attempt {self.calls}/{self.fail_times}")
            progress.emit(ProgressEvent(id=self.name, status="Verifying Checksum"))
            progress.emit(ProgressEvent(id=self.name, status="Download complete"))
            return self.tar
        finally:
            if self.counter is not None:
                self.counter.leave()

    def registered(self, diff_id: DiffID) -> None:
        self.registered_ids.append(diff_id)

    def close(self) -> None:
        self.closed += 1
