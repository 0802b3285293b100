"""Deadlines on responses: a bounded wait for the head, and a minimum rate for small bodies.

A socket timeout bounds each read, not the response: a server that sends one byte a second
keeps every read alive for ever, and one that never answers costs a full idle timeout on every
retry. :class:`Deadlines` is the one rule on top of the idle timeout, applied by
:mod:`lorry.registry.session` to every connection it opens:

- the **head** of the answer to a GET or HEAD must be complete ``head`` seconds after the
  request was sent (writes are exempt: a registry may verify a whole upload before answering);
- a **small body** — one read whole (manifest, token reply, tag page, error text) or with a
  ``Content-Length`` of at most ``small`` bytes (a config, a tiny layer) — must be complete
  within ``body`` seconds plus one second per ``min_rate`` bytes received, so a large document
  over a slow link gets the time it needs and a drip does not.

Large blob bodies are left to the stall watchdog of :mod:`lorry.transfer.stall`, which knows
about progress. Breaking a deadline raises a :class:`~lorry.errors.StallError` naming what was
being read. How it works: each connection carries a :class:`ConnectionTimer`; the response's
socket reader asks it, before every ``recv``, how long that read may wait (the idle timeout or
what is left of the deadline, whichever is shorter), so the bound holds however the bytes are
spread.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

__all__ = [
    "DEFAULT_DEADLINES",
    "ConnectionTimer",
    "DeadlineError",
    "Deadlines",
    "TimedHTTPConnection",
    "TimedHTTPSConnection",
]


@dataclass(frozen=True)
class Deadlines:
    """How long a response may take, beyond the per-read idle timeout (None: no bound).

    ``head``: seconds from a GET or HEAD request's last byte to the end of the response head.
    ``body``, ``min_rate``: a small body must be complete ``body`` seconds plus one second per
    ``min_rate`` bytes after its first read. ``small``: the largest ``Content-Length`` that
    makes a body small when it is not read whole.
    """

    head: float | None = 30.0
    body: float | None = 30.0
    min_rate: float = 8 * 1024
    small: int = 4 * 1024 * 1024

    def head_for(self, method: str) -> float | None:
        """The head deadline of a request with this method (None: only the idle timeout)."""
        return self.head if method in ("GET", "HEAD") else None


#: The deadlines of a pool built without its own: 30 s for a head, as the stall watchdog allows
#: a blob; 30 s plus 1 s per 8 KiB for a small body (a 4 MiB manifest may take 9 minutes, a
#: drip fails at 30 s, well within the 90 s a user waits for a pull to give up).
DEFAULT_DEADLINES = Deadlines()


class DeadlineError(TimeoutError):
    """A read ran past its deadline (the message says which one).

    A TimeoutError, so that ``http.client`` and the pool treat it as any socket timeout; it
    never leaves :mod:`lorry.registry`: ``session.translate_error`` turns it into a StallError.
    """


@dataclass
class _Budget:
    """One armed deadline: when it started, how long it allows, what it has seen."""

    started: float
    seconds: float
    min_rate: float
    what: str
    received: int = 0

    def left(self, now: float) -> float:
        """Seconds left before the deadline (negative once it has passed)."""
        extra = self.received / self.min_rate if self.min_rate > 0 else 0.0
        return self.started + self.seconds + extra - now

    def message(self, now: float) -> str:
        """Why the read failed, for the error line."""
        if self.min_rate <= 0:
            return f"no {self.what} from the server within {self.seconds:g}s"
        return (
            f"{self.what} too slow: {self.received} bytes in {now - self.started:.0f}s "
            f"(lorry allows {self.seconds:g}s plus 1s per {self.min_rate / 1024:g} KiB)"
        )


class ConnectionTimer:
    """The deadline the reads of one connection are under, if any; set by the reading thread."""

    def __init__(self, idle: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle = idle
        self._clock = clock
        self._sock: socket.socket | None = None
        self._budget: _Budget | None = None

    @property
    def armed(self) -> bool:
        """True while a deadline is armed."""
        return self._budget is not None

    def attach(self, sock: socket.socket) -> None:
        """Serve the reads of ``sock`` (the connection's socket, after connect)."""
        self._sock = sock
        with _LOCK:
            _TIMERS[sock] = self

    def arm_head(self, seconds: float) -> None:
        """Bound the wait for the response head to ``seconds`` from now."""
        self._budget = _Budget(self._clock(), seconds, 0.0, "response")

    def arm_body(self, deadlines: Deadlines) -> None:
        """Bound the rest of a small body by the ``body``/``min_rate`` rule (if not armed)."""
        if self._budget is None and deadlines.body is not None:
            self._budget = _Budget(self._clock(), deadlines.body, deadlines.min_rate, "reply")

    def disarm(self) -> None:
        """Back to the idle timeout alone."""
        if self._budget is None:
            return
        self._budget = None
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.settimeout(self.idle)

    def before_read(self) -> _Budget | None:
        """Set the socket's timeout for the next read; raise if the deadline has passed."""
        budget = self._budget
        if budget is None or self._sock is None:
            return None
        now = self._clock()
        left = budget.left(now)
        if left <= 0:
            raise DeadlineError(budget.message(now))
        self._sock.settimeout(left if self.idle is None else min(self.idle, left))
        return budget

    def timed_out(self, budget: _Budget, exc: TimeoutError) -> TimeoutError:
        """The error for a read that timed out: the deadline's when it has passed."""
        now = self._clock()
        if budget.left(now) <= 0:
            return DeadlineError(budget.message(now))
        return exc


_LOCK = threading.Lock()
_TIMERS: weakref.WeakKeyDictionary[socket.socket, ConnectionTimer] = weakref.WeakKeyDictionary()


class _TimedReader(io.RawIOBase):
    """A socket's raw byte stream whose every read obeys the connection's timer."""

    def __init__(self, raw: socket.SocketIO, timer: ConnectionTimer) -> None:
        super().__init__()
        self._raw = raw
        self._timer = timer

    def readable(self) -> bool:
        """Always: it is a reading stream."""
        return True

    def readinto(self, buffer: Any) -> int | None:
        """Read into ``buffer`` within the idle timeout and what is left of any deadline."""
        budget = self._timer.before_read()
        try:
            n = self._raw.readinto(buffer)
        except TimeoutError as exc:
            if budget is None:
                raise
            err = self._timer.timed_out(budget, exc)
            if err is exc:
                raise
            raise err from exc
        if budget is not None and n:
            budget.received += n
        return n

    def close(self) -> None:
        """Close the underlying socket stream (the socket closes with its last user)."""
        self._raw.close()
        super().close()


class _SocketView:
    """What HTTPResponse needs of a socket (``makefile``), with timed reads."""

    def __init__(self, sock: socket.socket, timer: ConnectionTimer) -> None:
        self._sock = sock
        self._timer = timer

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        """A buffered reader of the socket whose reads obey the timer."""
        del mode, args, kwargs
        raw = self._sock.makefile("rb", buffering=0)
        return io.BufferedReader(_TimedReader(raw, self._timer), io.DEFAULT_BUFFER_SIZE)


class _TimedResponse(http.client.HTTPResponse):
    """An HTTPResponse that reads through its connection's timer."""

    def __init__(
        self,
        sock: socket.socket,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        with _LOCK:
            timer = _TIMERS.get(sock)
        if timer is not None:
            sock = cast(socket.socket, _SocketView(sock, timer))
        super().__init__(sock, debuglevel, method, url)


class TimedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection whose responses are read under its :class:`ConnectionTimer`."""

    response_class = _TimedResponse

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        idle = self.timeout
        self.timer = ConnectionTimer(float(idle) if isinstance(idle, int | float) else None)

    def connect(self) -> None:
        """Connect (and for HTTPS, shake hands), then put the socket under the timer."""
        super().connect()
        self.timer.attach(self.sock)


class TimedHTTPSConnection(TimedHTTPConnection, http.client.HTTPSConnection):
    """:class:`TimedHTTPConnection` over TLS."""
