"""Server plumbing of the fault proxy: threaded loopback servers, body streaming, redirect host.

:mod:`lorry.testing.faultproxy` is the public face; this module holds what its servers (and
:mod:`lorry.testing.hostile`) share: a threaded HTTP/1.1 server that can cut its open
connections on stop, a request handler that streams bodies in bounded pieces (Content-Length or
chunked) and can cut a response short, and :class:`RedirectHost`, the second loopback server
that plays blob storage.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from lorry.errors import InvalidInputError

__all__ = ["BLOB_PATH", "CHUNK", "HOP_BY_HOP", "IO_TIMEOUT", "UPLOAD_PATH", "RedirectHost"]

#: Size of the pieces bodies are streamed in.
CHUNK = 64 * 1024
#: Timeout of every socket operation, so no thread waits forever.
IO_TIMEOUT = 30.0
#: Headers that belong to one connection and are never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "host",
    }
)
#: A blob path (``/v2/<name>/blobs/<digest>``), not an upload.
BLOB_PATH = re.compile(r"^/v2/.+/blobs/(?!uploads/)[^/]+$")
#: An upload path (``/v2/<name>/blobs/uploads/...``).
UPLOAD_PATH = re.compile(r"^/v2/.+/blobs/uploads/")


class LoopbackServer(socketserver.ThreadingMixIn, HTTPServer):
    """A threaded loopback HTTP server that knows its open connections so it can cut them."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        self.owner = owner
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup HTTPServer does."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def track(self, sock: socket.socket, add: bool) -> None:
        """Remember (or forget) an open socket, for :meth:`cut_all`."""
        with self._conns_lock:
            (self._conns.add if add else self._conns.discard)(sock)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Track the client connection, then serve it in its own thread."""
        self.track(request, True)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the client connection and close it."""
        self.track(request, False)
        super().shutdown_request(request)

    def cut_all(self) -> None:
        """Shut down every open socket so that blocked handler threads wake up and end."""
        with self._conns_lock:
            conns = list(self._conns)
        for sock in conns:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class ServingBase:
    """Start/stop, URL and context-manager plumbing of a loopback server and its handler."""

    _handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT`` of this server (valid after :meth:`start`)."""
        if self._server is None:
            raise InvalidInputError(f"{type(self).__name__} is not started")
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` of this server (valid after :meth:`start`)."""
        return f"http://{self.host}"

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve in background threads."""
        if self._server is not None:
            return
        self._server = LoopbackServer(self._handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def _before_stop(self) -> None:
        """Hook: wake anything that waits (stalls) once connections are cut."""

    def stop(self) -> None:
        """Stop accepting, cut open connections and join every thread."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.cut_all()  # first, so a released stall cannot deliver the rest of its body
        self._before_stop()
        server.server_close()  # joins the handler threads
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ServerBase(ServingBase):
    """:class:`ServingBase` with an upstream registry: the proxy and the redirect host."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__()
        parts = urlsplit(upstream_url.rstrip("/"))
        if parts.scheme != "http" or not parts.hostname:
            raise InvalidInputError(
                f"fault proxy upstream must be an http:// URL: {upstream_url!r}"
            )
        self.upstream_url = f"http://{parts.netloc}"
        self.upstream_netloc = parts.netloc
        self._upstream_addr = (parts.hostname, parts.port or 80)

    def upstream(self) -> http.client.HTTPConnection:
        """A new connection to the upstream registry."""
        return http.client.HTTPConnection(*self._upstream_addr, timeout=IO_TIMEOUT)


class StreamingHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 plumbing shared by both servers: body reading, answering, aborting."""

    protocol_version = "HTTP/1.1"
    timeout = IO_TIMEOUT
    server: LoopbackServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet: requests are in ``requests`` instead."""

    def body_chunks(self, limit: int | None = None) -> Iterator[bytes]:
        """Yield the request body in pieces (Content-Length or chunked), at most ``limit`` bytes."""
        budget = -1 if limit is None else limit
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            yield from self._chunked_body(budget)
            return
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0 and budget != 0:
            want = min(CHUNK, remaining) if budget < 0 else min(CHUNK, remaining, budget)
            data = self.rfile.read(want)
            if not data:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(data)
            budget -= len(data) if budget > 0 else 0
            yield data

    def _chunked_body(self, budget: int) -> Iterator[bytes]:
        while budget != 0:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise ConnectionError("bad chunk header")
            size = int(line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                for _ in range(100):  # trailers end with an empty line
                    if self.rfile.readline(8192) in (b"\r\n", b"\n", b""):
                        return
                raise ConnectionError("too many trailer lines")
            while size > 0 and budget != 0:
                want = min(CHUNK, size) if budget < 0 else min(CHUNK, size, budget)
                data = self.rfile.read(want)
                if not data:
                    raise ConnectionError("client closed the connection mid-chunk")
                size -= len(data)
                budget -= len(data) if budget > 0 else 0
                yield data
            if size == 0:
                self.rfile.readline(16)

    def drain(self) -> None:
        """Read and discard the request body, so the connection can serve the next request."""
        for _ in self.body_chunks():
            pass

    def answer(self, code: int, headers: Mapping[str, str], body: bytes = b"") -> None:
        """Send a complete response from the proxy itself."""
        self.send_response_only(code)
        names = {k.lower() for k in headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if "content-length" not in names:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def abort(self, *, reset: bool) -> None:
        """Close the client connection now: with an RST when ``reset``, else a plain FIN."""
        self.close_connection = True
        sock = self.connection
        try:
            if reset:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
            else:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def send_body(
        self,
        resp: http.client.HTTPResponse,
        chunked: bool,
        *,
        cut_at: int | None = None,
        reset: bool = False,
        stall_at: int | None = None,
        stall: Callable[[], None] | None = None,
        flip_at: int | None = None,
    ) -> int:
        """Stream the upstream body to the client; the number of body bytes sent.

        ``cut_at``: abort the connection (RST when ``reset``, else FIN) after that many bytes.
        ``stall``: called once when ``stall_at`` bytes have gone. ``flip_at``: invert that byte.
        """
        sent = 0
        while cut_at is None or sent < cut_at:
            want = CHUNK if cut_at is None else min(CHUNK, cut_at - sent)
            if stall is not None and stall_at is not None:
                if sent >= stall_at:
                    stall()
                    stall = None
                else:
                    want = min(want, stall_at - sent)
            data = resp.read1(want)
            if not data:
                resp.read()  # read1 never marks a fully read response closed; read() does
                break
            if flip_at is not None and sent <= flip_at < sent + len(data):
                i = flip_at - sent
                data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]
            self.count_sent(len(data))  # before the write, so a reader never sees it lag
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            except OSError:
                self.count_sent(-len(data))
                raise
            sent += len(data)
        else:  # cut_at was reached: the fault ends the connection here
            self.abort(reset=reset)
            return sent
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        return sent

    def count_sent(self, n: int) -> None:
        """Hook: account for ``n`` body bytes sent to the client."""


class _RedirectHandler(StreamingHandler):
    """Serves blob GET/HEAD from the registry; rejects requests that carry Authorization."""

    server: LoopbackServer

    def _serve(self) -> None:
        host: RedirectHost = self.server.owner
        path = self.path.partition("?")[0]
        self.drain()
        if self.headers.get("Authorization") is not None:
            host._reject(path)
            self.answer(host.reject_status, {}, b"only one auth mechanism allowed\n")
            return
        if self.command not in ("GET", "HEAD") or BLOB_PATH.search(path) is None:
            self.answer(404, {}, b"not a blob path\n")
            return
        up = host.upstream()
        try:
            up.connect()
            assert up.sock is not None
            self.server.track(up.sock, True)  # so that stop() can cut a slow upstream read
            headers = dict(host.upstream_headers)
            for name in ("Range", "Accept-Encoding", "If-None-Match"):
                if self.headers.get(name) is not None:
                    headers[name] = self.headers[name]
            up.request(self.command, path, headers=headers)
            resp = up.getresponse()
            self.send_response_only(resp.status, resp.reason)
            for name, value in resp.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    self.send_header(name, value)
            has_body = self.command != "HEAD" and resp.status not in (204, 304)
            chunked = has_body and resp.getheader("Content-Length") is None
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.send_body(resp, chunked) if has_body else resp.read()
        except (OSError, http.client.HTTPException):
            self.abort(reset=False)
        finally:
            if up.sock is not None:
                self.server.track(up.sock, False)
            up.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

    def count_sent(self, n: int) -> None:
        """Count blob bytes served."""
        self.server.owner._count(n)


class RedirectHost(ServerBase):
    """A second loopback server playing blob storage behind a redirect.

    It serves ``GET``/``HEAD /v2/<name>/blobs/<digest>`` by fetching from ``upstream_url``
    (sending ``upstream_headers``, e.g. basic auth for a protected registry), and answers
    ``reject_status`` (400, as S3 does; or 401) to any request that carries ``Authorization``,
    recording its path in :attr:`rejected`.
    """

    _handler = _RedirectHandler

    def __init__(
        self,
        upstream_url: str,
        *,
        reject_status: int = 400,
        upstream_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(upstream_url)
        self.reject_status = reject_status
        self.upstream_headers = dict(upstream_headers or {})
        self._rejected: list[str] = []
        self._bytes_sent = 0

    def __enter__(self) -> RedirectHost:
        self.start()
        return self

    @property
    def rejected(self) -> list[str]:
        """Paths of the requests refused because they carried ``Authorization``."""
        with self._lock:
            return list(self._rejected)

    @property
    def bytes_sent(self) -> int:
        """Blob body bytes served to clients."""
        with self._lock:
            return self._bytes_sent

    def _reject(self, path: str) -> None:
        with self._lock:
            self._rejected.append(path)

    def _count(self, n: int) -> None:
        with self._lock:
            self._bytes_sent += n
