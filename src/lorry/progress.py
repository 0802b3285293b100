"""Progress as data: the events transfers emit and the sink protocol every consumer implements.

Pull, push and copy never print. They emit :class:`ProgressEvent` values to a
:class:`ProgressSink`; the terminal renderer, the plain-line renderer, the Docker-compatible
JSON stream and library callers are all sinks. A sink must never block for long: the transfer
manager calls it from its broadcast loop (xfer-spec §1.3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "STEP",
    "ByteThrottle",
    "CallbackSink",
    "CollectingSink",
    "NullSink",
    "ProgressEvent",
    "ProgressSink",
]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One progress update or message.

    ``id`` is the line it belongs to (a 12-hex short digest for a layer, a tag for
    ``Pulling from``, empty for global lines). ``status`` is the action or message text.
    ``current``/``total`` are byte counts for a progress bar (``None`` for a status-only
    update). ``is_message`` marks a free-standing message line (``Digest: …``) rather than a
    per-layer status; ``aux`` carries machine data that is never displayed (the push result);
    ``error`` carries an error message that ends the stream.
    """

    id: str = ""
    status: str = ""
    current: int | None = None
    total: int | None = None
    is_message: bool = False
    aux: dict[str, Any] | None = None
    error: str | None = None

    @property
    def has_progress(self) -> bool:
        """True when the event carries a byte count (a progress bar can be drawn)."""
        return self.current is not None


class ProgressSink(Protocol):
    """Anything that accepts progress events; must return promptly and never raise."""

    def emit(self, event: ProgressEvent) -> None:
        """Take one event."""


class NullSink:
    """A sink that drops every event."""

    def emit(self, event: ProgressEvent) -> None:
        """Drop the event."""


@dataclass
class CollectingSink:
    """A sink that keeps every event in a list, for library callers and tests."""

    events: list[ProgressEvent] = field(default_factory=list)

    def emit(self, event: ProgressEvent) -> None:
        """Append the event."""
        self.events.append(event)

    def statuses(self, line_id: str) -> list[str]:
        """The status texts seen for one line id, in order, with consecutive repeats folded."""
        out: list[str] = []
        for ev in self.events:
            if ev.id == line_id and (not out or out[-1] != ev.status):
                out.append(ev.status)
        return out


@dataclass
class CallbackSink:
    """A sink that hands every event to a function."""

    callback: Callable[[ProgressEvent], None]

    def emit(self, event: ProgressEvent) -> None:
        """Call the callback."""
        self.callback(event)


#: Report at least every this many bytes (xfer-spec §5.6).
STEP = 512 * 1024


class ByteThrottle:
    """Says when a byte count is worth reporting: every min(512 KiB, 1 % of total) bytes.

    moby's progress reader rule (xfer-spec §5.6), once more at the end. The one byte path
    (``lorry.ops.blob_move``, for pull, push and copy alike) asks it per chunk and only
    crosses to the event loop when an update is due.
    """

    def __init__(self, total: int | None, start: int = 0) -> None:
        self.total = total
        self.step = STEP if not total else max(1, min(STEP, total // 100))
        self._last = start

    def due(self, current: int) -> bool:
        """True when ``current`` should be reported (and remember it as reported)."""
        final = self.total is not None and current >= self.total
        if current - self._last >= self.step or (final and current != self._last):
            self._last = current
            return True
        return False

    def reset(self, current: int) -> None:
        """Count from ``current`` again (a replayed stream moved back)."""
        self._last = current
