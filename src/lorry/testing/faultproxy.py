"""A fault-injecting HTTP/1.1 reverse proxy that sits in front of the real test registry.

The CNCF registry never drops a connection, answers 503, rate-limits or redirects to another
host on its own, so tests that need those faults talk to the registry through a
:class:`FaultProxy`. It forwards every request and response, streaming bodies both ways
(keep-alive and chunked request bodies included), rewrites ``Location`` headers that point at
the registry so clients stay on the proxy, and applies a script of :class:`Fault` rules: the
first rule whose method and path match, and whose ``times`` is not used up, acts on the
request. A :class:`RedirectHost` is a second loopback server that plays blob storage: it serves
blobs fetched from the registry and rejects any request that carries ``Authorization``, as S3
does with presigned URLs.

Every socket has a timeout, every loop ends at EOF or a byte limit, stalls wait on an event that
:meth:`FaultProxy.stop` sets, and ``stop()`` closes open connections and joins every thread.
"""

from __future__ import annotations

import http.client
import logging
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message

from lorry.testing._faultproxy_base import (
    BLOB_PATH,
    CHUNK,
    HOP_BY_HOP,
    IO_TIMEOUT,
    UPLOAD_PATH,
    LoopbackServer,
    RedirectHost,
    ServerBase,
    StreamingHandler,
)

__all__ = [
    "CHUNK",
    "IO_TIMEOUT",
    "Action",
    "DropAfter",
    "DropRequestAfter",
    "Every",
    "Fault",
    "FaultProxy",
    "FlipByte",
    "HoldRequest",
    "IgnoreRange",
    "RedirectHost",
    "RedirectTo",
    "RequestRecord",
    "Stall",
    "Status",
    "StripHeader",
    "Truncate",
]

log = logging.getLogger(__name__)

# -- actions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DropAfter:
    """Reset the connection (RST) after ``n_bytes`` of the response body."""

    n_bytes: int


@dataclass(frozen=True)
class Truncate:
    """Send ``n_bytes`` of the body under the original Content-Length, then close (FIN)."""

    n_bytes: int


@dataclass(frozen=True)
class Status:
    """Answer with ``code`` (500, 502, 503, 429 + Retry-After...) without asking the registry."""

    code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class RedirectTo:
    """Answer 307 to the same path and query on ``host``."""

    host: RedirectHost


@dataclass(frozen=True)
class StripHeader:
    """Remove header ``name`` from the registry's response."""

    name: str


@dataclass(frozen=True, eq=False)
class Stall:
    """Stop sending body bytes after ``after_bytes`` for ``seconds`` or until :meth:`release`."""

    after_bytes: int
    seconds: float
    started: threading.Event = field(default_factory=threading.Event, repr=False)
    released: threading.Event = field(default_factory=threading.Event, repr=False)

    def release(self) -> None:
        """End the stall now (``stop()`` also ends it)."""
        self.released.set()

    def wait(self) -> None:
        """Signal :attr:`started`, then hold until released or ``seconds`` have passed."""
        self.started.set()
        self.released.wait(self.seconds)


@dataclass(frozen=True, eq=False)
class HoldRequest:
    """Forward nothing of the request, answer nothing, then close: the registry never sees it.

    Holds for ``seconds`` or until :meth:`release` (``clear()`` and ``stop()`` release it). Plays
    a front proxy that buffers request bodies (nginx's default) when the client dies mid-body.
    """

    seconds: float
    started: threading.Event = field(default_factory=threading.Event, repr=False)
    released: threading.Event = field(default_factory=threading.Event, repr=False)

    def release(self) -> None:
        """End the hold now."""
        self.released.set()


@dataclass(frozen=True)
class FlipByte:
    """Invert the response body byte at ``offset``."""

    offset: int


@dataclass(frozen=True)
class IgnoreRange:
    """Forward the request without its ``Range`` header, as a server that ignores ranges does."""


@dataclass(frozen=True)
class DropRequestAfter:
    """Forward ``n_bytes`` of the request body, then close both connections without answering."""

    n_bytes: int


@dataclass(eq=False)
class Every:
    """Apply ``action`` to every ``n``-th request the rule sees, never twice in a row to one
    method and path (so a retried request gets through); forward the others untouched.

    ``seen`` records ``(time.monotonic(), method, path, acted)`` for every request, in order:
    what a test needs to check that no request came while a ``Retry-After`` still ran.
    """

    n: int
    action: Status
    seen: list[tuple[float, str, str, bool]] = field(default_factory=list, repr=False)
    _count: int = field(default=0, repr=False)
    _last_hit: tuple[str, str] | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def pick(self, method: str, path: str) -> Status | None:
        """The action for this request, or None to forward it."""
        with self._lock:
            self._count += 1
            act = self._count % self.n == 0 and self._last_hit != (method, path)
            if act:
                self._last_hit = (method, path)
            self.seen.append((time.monotonic(), method, path, act))
        return self.action if act else None


#: Everything a :class:`Fault` can do.
Action = (
    Every
    | DropAfter
    | Truncate
    | Status
    | RedirectTo
    | StripHeader
    | Stall
    | FlipByte
    | DropRequestAfter
    | IgnoreRange
    | HoldRequest
)


@dataclass(kw_only=True, eq=False)
class Fault:
    """One rule: requests with ``method`` whose path matches the regex ``path`` get ``action``.

    ``path`` is searched (``re.search``) in the path without the query; ``method`` ``"*"``
    matches any method. The rule acts on ``times`` requests (-1: on all of them); ``hits``
    counts the requests it acted on.
    """

    method: str = "GET"
    path: str
    times: int = 1
    action: Action
    hits: int = field(default=0, init=False)

    def matches(self, method: str, path: str) -> bool:
        """True when this rule applies to a request and is not used up."""
        if self.times != -1 and self.hits >= self.times:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return re.search(self.path, path) is not None


@dataclass(frozen=True)
class RequestRecord:
    """One request the proxy saw; ``Authorization`` values are replaced by ``<redacted>``."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    status: int | None
    fault: str | None = None

    @property
    def has_authorization(self) -> bool:
        """True when the client sent an ``Authorization`` header."""
        return any(k.lower() == "authorization" for k in self.headers)


def _record_headers(headers: Message) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in headers.items()}


# -- the proxy ----------------------------------------------------------------------------------


class _ProxyHandler(StreamingHandler):
    """Forwards one client connection's requests to the registry, applying fault rules."""

    server: LoopbackServer
    _up: http.client.HTTPConnection | None = None
    _counting = False
    _noted = False
    _fault_name: str | None = None

    def finish(self) -> None:
        """Close the upstream connection with the client connection."""
        self._drop_upstream()
        super().finish()

    def _drop_upstream(self) -> None:
        if self._up is not None:
            if self._up.sock is not None:
                self.server.track(self._up.sock, False)
            self._up.close()
            self._up = None

    def _proxy(self) -> None:
        proxy: FaultProxy = self.server.owner
        fault = proxy._take(self.command, self.path.partition("?")[0])
        action = fault.action if fault is not None else None
        if isinstance(action, Every):
            action = action.pick(self.command, self.path.partition("?")[0])
        self._noted = False
        self._fault_name = type(action).__name__ if action is not None else None
        try:
            if isinstance(action, Status):
                self.drain()
                self._note(action.code)
                self.answer(action.code, action.headers, action.body)
            elif isinstance(action, HoldRequest):
                action.started.set()
                action.released.wait(action.seconds)
                self._note(None)
                self.abort(reset=False)
            elif isinstance(action, RedirectTo):
                self.drain()
                self._note(307)
                self.answer(307, {"Location": action.host.url + self.path})
            else:
                self._forward(proxy, action)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            log.debug("fault proxy: %s %s ended early: %r", self.command, self.path, exc)
            self._note(None)
            self._drop_upstream()
            self.abort(reset=False)

    def _note(self, status: int | None) -> None:
        """Record the request once, before the client can see its outcome."""
        if self._noted:
            return
        self._noted = True
        path, _, query = self.path.partition("?")
        headers = _record_headers(self.headers)
        record = RequestRecord(self.command, path, query, headers, status, self._fault_name)
        self.server.owner._record(record)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _proxy  # noqa: N815

    def _connect(self) -> http.client.HTTPConnection:
        if self._up is None:
            self._up = self.server.owner.upstream()
            self._up.connect()
            assert self._up.sock is not None
            self.server.track(self._up.sock, True)
        return self._up

    def _forward(self, proxy: FaultProxy, action: Action | None) -> None:
        """Send the request upstream and its answer back."""
        try:
            up = self._connect()
            up.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        except OSError:
            self.drain()
            self._note(502)
            self.answer(502, {}, b"fault proxy: upstream unreachable\n")
            return
        up.putheader("Host", proxy.upstream_netloc)
        drop_range = isinstance(action, IgnoreRange)
        for name, value in self.headers.items():
            if name.lower() not in HOP_BY_HOP and not (drop_range and name.lower() == "range"):
                up.putheader(name, value)
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if chunked:
            up.putheader("Transfer-Encoding", "chunked")
        up.endheaders()
        limit = action.n_bytes if isinstance(action, DropRequestAfter) else None
        upload = UPLOAD_PATH.search(self.path) is not None
        for data in self.body_chunks(limit):
            up.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            if upload:
                proxy._count(received=len(data))
        if limit is not None:
            self._note(None)
            self._drop_upstream()
            self.abort(reset=False)
            return
        if chunked:
            up.send(b"0\r\n\r\n")
        self._relay(proxy, up.getresponse(), action)

    def _relay(
        self, proxy: FaultProxy, resp: http.client.HTTPResponse, action: Action | None
    ) -> None:
        """Send the registry's response to the client."""
        self._note(resp.status)
        self.send_response_only(resp.status, resp.reason)
        strip = action.name.lower() if isinstance(action, StripHeader) else None
        for name, value in resp.getheaders():
            low = name.lower()
            if low in HOP_BY_HOP or low == strip:
                continue
            if low == "location" and value.startswith(proxy.upstream_url):
                self.send_header(name, proxy.url + value[len(proxy.upstream_url) :])
            else:
                self.send_header(name, value)
        has_body = self.command != "HEAD" and resp.status not in (204, 304)
        chunked = has_body and resp.getheader("Content-Length") is None
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        path = self.path.partition("?")[0]
        self._counting = self.command == "GET" and BLOB_PATH.search(path) is not None
        if has_body:
            self._send_with(resp, chunked, action)
        else:
            resp.read()
        if self.close_connection or resp.will_close:
            self._drop_upstream()

    def _send_with(
        self, resp: http.client.HTTPResponse, chunked: bool, action: Action | None
    ) -> None:
        """Stream the body, letting ``action`` cut, stall or corrupt it."""
        if isinstance(action, DropAfter | Truncate):
            self.send_body(
                resp, chunked, cut_at=action.n_bytes, reset=isinstance(action, DropAfter)
            )
        elif isinstance(action, Stall):
            self.send_body(resp, chunked, stall_at=action.after_bytes, stall=action.wait)
        elif isinstance(action, FlipByte):
            self.send_body(resp, chunked, flip_at=action.offset)
        else:
            self.send_body(resp, chunked)

    def count_sent(self, n: int) -> None:
        """Count blob body bytes (GET on /v2/<name>/blobs/<digest>) sent to the client."""
        if self._counting:
            self.server.owner._count(sent=n)


class FaultProxy(ServerBase):
    """A reverse proxy in front of ``upstream_url`` (``http://127.0.0.1:5000``) with faults.

    Use as a context manager or call :meth:`start`/:meth:`stop`. :attr:`url` is where clients
    connect. Counters and :attr:`requests` are safe to read from any thread.
    """

    _handler = _ProxyHandler

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._rules: list[Fault] = []
        self._requests: list[RequestRecord] = []
        self._sent = 0
        self._received = 0

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def add(self, rule: Fault) -> Fault:
        """Append ``rule`` to the script (rules are tried in the order they were added)."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule and release any stall in progress."""
        with self._lock:
            rules, self._rules = self._rules, []
        for rule in rules:
            if isinstance(rule.action, Stall | HoldRequest):
                rule.action.release()

    @property
    def blob_bytes_sent(self) -> int:
        """Bytes of blob bodies (GET .../blobs/<digest>) the proxy sent to clients."""
        with self._lock:
            return self._sent

    @property
    def blob_bytes_received(self) -> int:
        """Bytes of upload bodies (.../blobs/uploads/...) the proxy forwarded to the registry."""
        with self._lock:
            return self._received

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the record of every finished request, oldest first."""
        with self._lock:
            return list(self._requests)

    def _take(self, method: str, path: str) -> Fault | None:
        """The first rule that applies to the request, with its hit counted."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.hits += 1
                    return rule
        return None

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)

    def _count(self, *, sent: int = 0, received: int = 0) -> None:
        with self._lock:
            self._sent += sent
            self._received += received

    def _before_stop(self) -> None:
        with self._lock:
            rules = list(self._rules)
        for rule in rules:
            if isinstance(rule.action, Stall | HoldRequest):
                rule.action.release()
