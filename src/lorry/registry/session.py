"""The HTTP layer: pooled keep-alive connections over the standard library's ``http.client``.

``http.client`` was chosen by measurement (docs/decisions.md, "HTTP library"): it moves a large
blob faster than any third-party client and costs no dependency. This module is the only place
in lorry that touches it; everything above sees :class:`Response` and lorry errors.

:class:`HttpPool` keeps idle connections per origin for reuse, limits how many connections one
origin may have open at once (a semaphore held from request to the end of the response body),
and retries a request once on a fresh connection when a reused keep-alive connection turns out
to have been closed by the server — the one replay that is always safe, because the server saw
nothing. Redirects, auth and retries are the caller's business (:mod:`lorry.registry.transport`).
Every connection reads under the pool's :class:`~lorry.registry.deadlines.Deadlines` (the wait
for a GET's response head, the time a small body may take) on top of the per-read idle timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit

from lorry.errors import AuthError, LorryError, StallError, UnavailableError
from lorry.registry import deadlines as _deadlines
from lorry.registry.deadlines import (
    DeadlineError,
    Deadlines,
    TimedHTTPConnection,
    TimedHTTPSConnection,
)
from lorry.registry.proxy import ProxyRules
from lorry.registry.redact import get_logger, redact_url

__all__ = ["Body", "HttpPool", "Origin", "Response", "translate_error"]

log = get_logger(__name__)

#: A request body: nothing, bytes in memory, or an iterable of chunks (sent as they come).
Body = bytes | Iterable[bytes] | None

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})
#: TLS alerts a server sends when it wants a client certificate it did not get (or trust).
_CLIENT_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "ALERT_BAD_CERTIFICATE", "ALERT_UNKNOWN_CA")
#: Seconds a TLS probe (is this insecure host speaking TLS?) may take to connect and shake hands.
_PROBE_TIMEOUT = 10.0
_BLOCK = 1 << 20  # 1 MiB reads: 8 KiB reads cost twice the CPU (DESIGN.md §9)


@dataclass(frozen=True)
class Origin:
    """Scheme, host and port: the unit of connection reuse and of credential scoping."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of an absolute http(s) URL."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UnavailableError(f"not an http(s) URL: {redact_url(url)}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return cls(parts.scheme, parts.hostname, port)

    @property
    def netloc(self) -> str:
        """``host:port`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def translate_error(exc: BaseException, what: str) -> LorryError:
    """A lorry error for an exception from the socket, TLS or HTTP-parsing layer."""
    if isinstance(exc, LorryError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return AuthError(
            f"{what}: TLS certificate verification failed: {exc.verify_message} (trust its CA "
            "with a *.crt in certs.d/HOST or --cert-dir, or mark the host insecure)"
        )
    if isinstance(exc, ssl.SSLError) and any(alert in str(exc) for alert in _CLIENT_CERT_ALERTS):
        return AuthError(
            f"{what}: the registry refused the TLS client certificate or wants one "
            f"({exc.reason}): put NAME.cert and NAME.key in certs.d/HOST or --cert-dir"
        )
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
        return UnavailableError(
            f"{what}: the server does not speak TLS (plain HTTP?); mark the host insecure "
            "(--insecure-registry HOST) to let lorry fall back to HTTP"
        )
    if isinstance(exc, DeadlineError):
        return StallError(f"{what}: {exc}")
    if isinstance(exc, TimeoutError | socket.timeout):
        return StallError(f"{what}: no data from the server within the timeout")
    if isinstance(exc, http.client.IncompleteRead):
        return UnavailableError(f"{what}: connection closed before the body was complete")
    if isinstance(exc, http.client.RemoteDisconnected):
        return UnavailableError(f"{what}: server closed the connection without a response")
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and detail.startswith("Tunnel connection failed: 407"):
        return AuthError(
            f"{what}: the proxy asks for authentication (407); put user:password in its URL"
        )
    if isinstance(exc, OSError) and detail.startswith("Tunnel connection failed"):
        return UnavailableError(f"{what}: proxy refused CONNECT: {detail.partition(': ')[2]}")
    return UnavailableError(f"{what}: connection failed: {detail}")


class Response:
    """A response whose body is read on demand; closing it returns the connection to the pool."""

    def __init__(
        self,
        pool: HttpPool,
        origin: Origin,
        conn: TimedHTTPConnection,
        raw: http.client.HTTPResponse,
        *,
        url: str,
        method: str,
        what: str = "",
    ) -> None:
        self._pool = pool
        self._origin = origin
        self._conn: TimedHTTPConnection | None = conn
        self._timer = conn.timer
        # Kept for abort(): http.client drops conn.sock once a response will close the socket.
        self._sock: socket.socket | None = conn.sock
        self._raw = raw
        self.url = url
        self.method = method
        self.what = what or f"{method} {redact_url(url)}"
        self.status: int = raw.status
        self.reason: str = raw.reason
        self.headers: Message = raw.headers

    def header(self, name: str) -> str | None:
        """One header's value (case-insensitive), or None."""
        return self.headers.get(name)

    def header_all(self, name: str) -> list[str]:
        """Every value of a repeated header."""
        return list(self.headers.get_all(name) or [])

    @property
    def content_length(self) -> int | None:
        """The ``Content-Length`` as an int, or None when absent or malformed."""
        value = self.header("Content-Length")
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    def _arm_small(self) -> None:
        """Put a small body (by its Content-Length) under the pool's body deadline."""
        length = self.content_length
        if length is not None and length <= self._pool.deadlines.small:
            self._timer.arm_body(self._pool.deadlines)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes of the body (all of it when ``n`` < 0); b"" at the end."""
        if self._conn is None:
            return b""
        self._arm_small()
        try:
            data = self._raw.read() if n < 0 else self._raw.read(n)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise translate_error(exc, self.what) from exc
        if n < 0 or not data or self._raw.isclosed():
            self._finish()
        return data

    def read1(self, n: int = _BLOCK) -> bytes:
        """Up to ``n`` bytes with at most one read from the socket (data already received is
        returned before a later failure is raised); b"" at the end."""
        if self._conn is None:
            return b""
        self._arm_small()
        try:
            data = self._raw.read1(n)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            self.close()
            raise translate_error(exc, self.what) from exc
        if not data or self._raw.isclosed():
            self._finish()
        return data

    def abort(self) -> None:
        """Cut the connection from any thread, so a read blocked on it returns and fails now.

        Used when the operation is cancelled while a worker thread waits for a stalled body.
        """
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing is blocked on it
                sock.shutdown(socket.SHUT_RDWR)

    def read_capped(self, limit: int) -> tuple[bytes, bool]:
        """At most ``limit`` bytes of the body and whether the body was longer.

        The body is read whole, so it is small: the pool's body deadline bounds it.
        """
        if self._conn is not None:
            self._timer.arm_body(self._pool.deadlines)
        buf = bytearray()
        while len(buf) <= limit:
            chunk = self.read(min(_BLOCK, limit + 1 - len(buf)))
            if not chunk:
                return bytes(buf), False
            buf += chunk
        self.close()
        return bytes(buf[:limit]), True

    def iter_chunks(self, size: int = _BLOCK) -> Iterator[bytes]:
        """The body in chunks of up to ``size`` bytes."""
        while chunk := self.read(size):
            yield chunk

    def drain(self, limit: int = 64 * 1024) -> None:
        """Read and drop a short body so the connection can be reused; close a long one."""
        try:
            _, longer = self.read_capped(limit)
        except LorryError:
            longer = True
        if longer:
            self.close()

    def _complete(self) -> None:
        """Tell http.client a body whose every byte was read is over, so the connection can
        be reused: an empty body (HEAD, 204) is complete once "read", and ``read1`` at the end
        of a body returns b"" without closing it (every blob took a new connection)."""
        if not self._raw.isclosed() and self._raw.length == 0:
            self._raw.read()

    def _finish(self) -> None:
        """The body was read to the end: keep the connection if the server allows it."""
        conn, self._conn = self._conn, None
        self._timer.disarm()
        if conn is not None:
            self._complete()
            keep = self._raw.isclosed() and not self._raw.will_close
            self._pool.release(self._origin, conn, reuse=keep)

    def close(self) -> None:
        """Release the connection; an unread body means it cannot be reused."""
        if self._conn is not None:
            self._complete()
        conn, self._conn = self._conn, None
        self._timer.disarm()
        if conn is not None:
            reuse = self._raw.isclosed() and not self._raw.will_close
            if not reuse:
                self._raw.close()
            self._pool.release(self._origin, conn, reuse=reuse)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HttpPool:
    """Keep-alive connections per origin with a per-origin limit, safe across threads."""

    def __init__(
        self,
        *,
        per_host: int = 8,
        timeout: float = 60.0,
        ssl_context: Callable[[str], ssl.SSLContext] | None = None,
        user_agent: str = "lorry",
        deadlines: Deadlines | None = None,
        proxies: ProxyRules | None = None,
    ) -> None:
        self.per_host = per_host
        #: Forward proxies (None or empty: connect directly); HTTPS goes through CONNECT.
        self.proxies = proxies or ProxyRules()
        self.timeout = timeout
        #: The response deadlines (default: :data:`~lorry.registry.deadlines.DEFAULT_DEADLINES`
        #: as it is when the pool is made); may be replaced while the pool is idle.
        self.deadlines = deadlines if deadlines is not None else _deadlines.DEFAULT_DEADLINES
        self.user_agent = user_agent
        self._ssl_context = ssl_context or (lambda host: ssl.create_default_context())
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[TimedHTTPConnection]] = {}
        self._slots: dict[Origin, threading.BoundedSemaphore] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._closed = False

    def send(
        self, method: str, url: str, headers: dict[str, str], body: Body = None, *, what: str
    ) -> Response:
        """Send one request and return the response with its headers read (body not yet)."""
        origin = Origin.of(url)
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        hdrs = {"User-Agent": self.user_agent, **headers}
        proxy = self.proxies.for_url(origin.scheme, origin.host, origin.port)
        if proxy is not None and origin.scheme == "http":
            target = f"http://{origin.netloc}{target}"
            if proxy.authorization:
                hdrs["Proxy-Authorization"] = proxy.authorization
        slot = self._slot(origin)
        slot.acquire()
        try:
            return self._send_on_pool(
                origin=origin,
                method=method,
                url=url,
                target=target,
                hdrs=hdrs,
                body=body,
                what=what,
            )
        except BaseException:
            slot.release()
            raise

    def _send_on_pool(
        self,
        *,
        origin: Origin,
        method: str,
        url: str,
        target: str,
        hdrs: dict[str, str],
        body: Body,
        what: str,
    ) -> Response:
        """Try an idle connection first; on a stale one, retry once on a fresh connection."""
        conn, reused = self._checkout(origin)
        try:
            raw = _exchange(
                conn, method, target, hdrs, body, head_deadline=self.deadlines.head_for(method)
            )
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine) as exc:
            conn.close()
            # Only idempotent requests are replayed: a PATCH or POST may have been half-applied.
            if not (reused and method in _IDEMPOTENT and (body is None or isinstance(body, bytes))):
                raise translate_error(exc, what) from exc
            log.debug("stale keep-alive connection to %s; reconnecting", origin.netloc)
            conn = self._new_connection(origin)
            try:
                raw = _exchange(
                    conn, method, target, hdrs, body, head_deadline=self.deadlines.head_for(method)
                )
            except (OSError, http.client.HTTPException) as exc2:
                conn.close()
                raise translate_error(exc2, what) from exc2
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise translate_error(exc, what) from exc
        except BaseException:
            conn.close()
            raise
        return Response(self, origin, conn, raw, url=url, method=method, what=what)

    def tls_handshake(self, url: str) -> str | None:
        """Open a TLS connection to ``url``'s origin (through its proxy, if any); None when it
        works (the connection is kept for the next request), else why it failed."""
        origin = Origin.of(url)
        conn = self._new_connection(origin)
        conn.timeout = min(self.timeout, _PROBE_TIMEOUT)
        try:
            conn.connect()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            return str(exc) or type(exc).__name__
        if conn.sock is not None:
            conn.sock.settimeout(self.timeout)
        conn.timeout = self.timeout
        with self._lock:
            if not self._closed:
                self._idle.setdefault(origin, []).append(conn)
                return None
        conn.close()
        return None

    def release(self, origin: Origin, conn: TimedHTTPConnection, *, reuse: bool) -> None:
        """Give a connection back (kept idle when ``reuse``) and free its origin slot."""
        with self._lock:
            if reuse and not self._closed:
                self._idle.setdefault(origin, []).append(conn)
                conn = None  # type: ignore[assignment]
            slot = self._slots[origin]
        if conn is not None:
            conn.close()
        slot.release()

    def close(self) -> None:
        """Close every idle connection; connections in use close when released."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _slot(self, origin: Origin) -> threading.BoundedSemaphore:
        """The semaphore limiting connections to ``origin``."""
        with self._lock:
            slot = self._slots.get(origin)
            if slot is None:
                slot = self._slots[origin] = threading.BoundedSemaphore(self.per_host)
            return slot

    def _checkout(self, origin: Origin) -> tuple[TimedHTTPConnection, bool]:
        """An idle connection to ``origin`` if there is one, else a new one."""
        with self._lock:
            idle = self._idle.get(origin)
            if idle:
                return idle.pop(), True
        return self._new_connection(origin), False

    def _new_connection(self, origin: Origin) -> TimedHTTPConnection:
        """A new, not yet connected, connection (TLS for https; via a proxy when one applies)."""
        proxy = self.proxies.for_url(origin.scheme, origin.host, origin.port)
        if origin.scheme == "https":
            with self._lock:
                ctx = self._contexts.get(origin.netloc)
            if ctx is None:  # built outside the lock: loading CAs takes tens of milliseconds
                made = self._ssl_context(origin.netloc)
                with self._lock:
                    ctx = self._contexts.setdefault(origin.netloc, made)
            if proxy is None:
                return TimedHTTPSConnection(
                    origin.host, origin.port, timeout=self.timeout, context=ctx, blocksize=_BLOCK
                )
            tls = TimedHTTPSConnection(
                proxy.host, proxy.port, timeout=self.timeout, context=ctx, blocksize=_BLOCK
            )
            auth = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
            tls.set_tunnel(origin.host, origin.port, headers=auth)
            return tls
        host, port = (origin.host, origin.port) if proxy is None else (proxy.host, proxy.port)
        return TimedHTTPConnection(host, port, timeout=self.timeout, blocksize=_BLOCK)


def _exchange(
    conn: TimedHTTPConnection,
    method: str,
    target: str,
    headers: dict[str, str],
    body: Body,
    *,
    head_deadline: float | None,
) -> http.client.HTTPResponse:
    """Write the request (streaming an iterable body) and read the response head, within
    ``head_deadline`` seconds of the request's last byte when one is given."""
    conn.putrequest(method, target, skip_accept_encoding=True)
    chunked = False
    if isinstance(body, bytes):
        headers = {**headers, "Content-Length": str(len(body))}
    elif body is not None and "Content-Length" not in headers:
        headers = {**headers, "Transfer-Encoding": "chunked"}
        chunked = True
    elif body is None and method in ("PUT", "POST", "PATCH"):
        headers = {"Content-Length": "0", **headers}
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.endheaders()
    if isinstance(body, bytes):
        if body:
            conn.send(body)
    elif body is not None:
        for chunk in body:
            if not chunk:
                continue
            conn.send(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            conn.send(b"0\r\n\r\n")
    if head_deadline is not None:
        conn.timer.arm_head(head_deadline)
    try:
        return conn.getresponse()
    finally:
        conn.timer.disarm()
