"""HttpPool keep-alive: a body read to its end, in any way, hands its connection on.

Streaming a blob with ``read1`` used to leave http.client's response open at its last byte
(``read1`` returns b"" there without closing), so every blob of a pull took a new connection.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lorry.registry.session import HttpPool

BODY = bytes(range(256)) * 4096  # 1 MiB


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def setup(self) -> None:
        super().setup()
        server = self.server
        assert isinstance(server, _Server)
        with server.lock:
            server.connections += 1

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections = 0


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _read1_to_end(pool: HttpPool, url: str) -> bytes:
    resp = pool.send("GET", url, {}, what="test")
    parts = []
    while data := resp.read1(64 * 1024):
        parts.append(data)
    return b"".join(parts)


def _read_to_end(pool: HttpPool, url: str) -> bytes:
    resp = pool.send("GET", url, {}, what="test")
    return resp.read()


@pytest.mark.parametrize("read", [_read1_to_end, _read_to_end], ids=["read1", "read"])
def test_bodies_read_to_the_end_share_one_connection(
    server: _Server, read: Callable[[HttpPool, str], bytes]
) -> None:
    url = f"http://127.0.0.1:{server.server_address[1]}/blob"
    pool = HttpPool()
    try:
        for _ in range(3):
            assert read(pool, url) == BODY
    finally:
        pool.close()
    assert server.connections == 1
