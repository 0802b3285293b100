"""Progress renderers: the three ways the CLI shows one stream of progress events.

- :class:`TtyRenderer`: one line per layer, redrawn in place, as ``docker pull`` does;
- :class:`PlainRenderer`: one line per status change, no control codes (logs and CI);
- :class:`JsonRenderer`: the Docker Engine JSON message stream (xfer-spec §5), one object a line.

All three are :class:`lorry.progress.ProgressSink` s. They are thread-safe and never raise into
the transfer that feeds them: a broken pipe marks the renderer closed and later events are dropped.
"""

from __future__ import annotations

import json
import math
import threading
from abc import ABC, abstractmethod
from typing import IO, Any, Literal

from lorry.progress import ProgressEvent

__all__ = [
    "JsonRenderer",
    "PlainRenderer",
    "TtyRenderer",
    "human_size",
    "json_message",
    "make_renderer",
    "progress_bar",
]

_BAR_WIDTH = 50
_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")


def human_size(n: float) -> str:
    """Docker's HumanSize: decimal units, 4 significant digits (32768 → ``32.77kB``)."""
    i = 0
    while n >= 1000 and i < len(_UNITS) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{_UNITS[i]}"


def progress_bar(current: int, total: int | None) -> str:
    """The pre-rendered ``progress`` string of the JSON stream (xfer-spec §5.4)."""
    if current <= 0 and (total or 0) <= 0:
        return ""
    if not total or total <= 0:
        return human_size(current).rjust(8)
    pct = min(math.floor(current / total * 100) // 2, _BAR_WIDTH)
    bar = "[" + "=" * pct + ">" + " " * (_BAR_WIDTH - pct) + "] "
    if current > total:
        return bar + human_size(current).rjust(8)
    return bar + f"{human_size(current):>8}/{human_size(total)}"


def json_message(ev: ProgressEvent) -> dict[str, Any]:
    """The Docker JSON message for one event (field names as the Engine API sends them)."""
    if ev.error is not None:
        return {"errorDetail": {"message": ev.error}, "error": ev.error}
    if ev.aux is not None:
        return {"progressDetail": {}, "aux": ev.aux}
    msg: dict[str, Any] = {"status": ev.status}
    if not ev.is_message:
        detail: dict[str, int] = {}
        if ev.current:
            detail["current"] = ev.current
        if ev.total:
            detail["total"] = ev.total
        msg["progressDetail"] = detail
        if ev.has_progress:
            bar = progress_bar(ev.current or 0, ev.total)
            if bar:
                msg["progress"] = bar
    if ev.id:
        msg["id"] = ev.id
    return msg


class _Renderer(ABC):
    """Shared plumbing: a lock, an output stream, and broken-pipe tolerance."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._lock = threading.Lock()
        self.closed = False

    def emit(self, event: ProgressEvent) -> None:
        """Render one event; drop it quietly once the output is gone."""
        with self._lock:
            if self.closed:
                return
            try:
                self._render(event)
                self._out.flush()
            except (BrokenPipeError, ValueError):
                self.closed = True

    @abstractmethod
    def _render(self, event: ProgressEvent) -> None:
        """Write one event; called with the lock held."""


class JsonRenderer(_Renderer):
    """Writes the Docker Engine JSON message stream, one object per line."""

    def _render(self, event: ProgressEvent) -> None:
        self._out.write(json.dumps(json_message(event), separators=(",", ":")) + "\n")


class PlainRenderer(_Renderer):
    """One line per status change, ``<id>: <status>``; byte-count updates are not repeated."""

    def __init__(self, out: IO[str]) -> None:
        super().__init__(out)
        self._last: dict[str, str] = {}

    def _render(self, event: ProgressEvent) -> None:
        if event.aux is not None:
            return
        if event.error is not None:
            self._out.write(f"error: {event.error}\n")
            return
        if event.id and not event.is_message:
            if self._last.get(event.id) == event.status:
                return
            self._last[event.id] = event.status
        self._out.write(f"{event.id}: {event.status}\n" if event.id else f"{event.status}\n")


class TtyRenderer(_Renderer):
    """Docker's terminal view: a line per layer id, rewritten in place with ANSI cursor moves."""

    def __init__(self, out: IO[str], width: int = 80) -> None:
        super().__init__(out)
        self._lines: dict[str, int] = {}
        self._width = width

    def _render(self, event: ProgressEvent) -> None:
        if event.aux is not None:
            return
        if event.error is not None:
            self._out.write(f"error: {event.error}\n")
            return
        if not event.id or event.is_message:
            # A free line also resets the id→line map, as docker's renderer does.
            self._lines.clear()
            self._out.write(f"{event.id}: {event.status}\n" if event.id else f"{event.status}\n")
            return
        text = f"{event.id}: {event.status}"
        if event.has_progress:
            bar = _short_bar(event.current or 0, event.total, self._width - len(text) - 2)
            text = f"{text} {bar}" if bar else text
        if event.id not in self._lines:
            self._lines[event.id] = len(self._lines)
            self._out.write(text[: self._width] + "\n")
            return
        up = len(self._lines) - self._lines[event.id]
        self._out.write(f"\x1b[{up}A\r\x1b[2K{text[: self._width]}\x1b[{up}B\r")


def _short_bar(current: int, total: int | None, room: int) -> str:
    """A bar that fits in ``room`` columns, as docker shrinks it on narrow terminals."""
    full = progress_bar(current, total)
    if len(full) <= room or not total:
        return full
    sizes = f"{human_size(current):>8}/{human_size(total)}"
    width = max(room - len(sizes) - 4, 0)
    if width < 10:
        return sizes
    done = min(int(current / total * width), width)
    return "[" + "=" * done + ">" + " " * (width - done) + "] " + sizes


def make_renderer(mode: Literal["auto", "tty", "plain", "json"], out: IO[str]) -> _Renderer:
    """The renderer for ``--progress MODE``; ``auto`` picks tty on a terminal, else plain."""
    if mode == "json":
        return JsonRenderer(out)
    if mode == "tty" or (mode == "auto" and out.isatty()):
        import shutil

        return TtyRenderer(out, shutil.get_terminal_size((80, 24)).columns)
    return PlainRenderer(out)
