"""The fault proxy against the real registry: forwarding, counters and each fault's effect.

Everything here speaks stdlib ``http.client`` so that the proxy is tested on its own, without
lorry's registry client.
"""

from __future__ import annotations

import hashlib
import http.client
import random
import threading
from urllib.parse import urlsplit

import pytest

from lorry.testing.faultproxy import (
    DropAfter,
    DropRequestAfter,
    Fault,
    FaultProxy,
    FlipByte,
    RedirectHost,
    RedirectTo,
    Stall,
    Status,
    StripHeader,
    Truncate,
)
from lorry.testing.registry import RegistryServer

pytestmark = pytest.mark.integration

REPO = "faultproxy/test"
BLOB = random.Random(7).randbytes(300_000)  # several proxy chunks
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
BLOB_PATH = f"/v2/{REPO}/blobs/{DIGEST}"
WAIT = 30.0  # a safety bound on event waits, never an assertion about time


def connect(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    assert parts.hostname is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=WAIT)


def request(
    url: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = connect(url)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp, resp.read()
    finally:
        conn.close()


def upload(url: str, data: bytes, *, chunked: bool) -> str:
    """Push ``data`` as a blob via POST, one PATCH and the closing PUT; the final Location."""
    conn = connect(url)
    try:
        conn.request("POST", f"/v2/{REPO}/blobs/uploads/", headers={"Content-Length": "0"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 202, resp.status
        location = resp.getheader("Location") or ""
        assert location.startswith(url + "/v2/"), location  # rewritten to stay on the proxy
        if chunked:
            pieces = (data[i : i + 70_000] for i in range(0, len(data), 70_000))
            conn.request("PATCH", urlsplit(location).path + "?" + urlsplit(location).query,
                         body=pieces, encode_chunked=True,
                         headers={"Content-Type": "application/octet-stream"})  # fmt: skip
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 202, resp.status
            location = resp.getheader("Location") or ""
            body = b""
        else:
            body = data
        parts = urlsplit(location)
        conn.request("PUT", f"{parts.path}?{parts.query}&digest={DIGEST}", body=body)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 201, resp.status
        return resp.getheader("Location") or ""
    finally:
        conn.close()


@pytest.fixture(scope="module")
def pushed(registry: RegistryServer) -> None:
    """The test blob, present in the registry (pushed directly, not through a proxy)."""
    upload(registry.url, BLOB, chunked=False)


def test_upload_chunked_through_proxy_counts_bytes(proxy: FaultProxy) -> None:
    location = upload(proxy.url, BLOB, chunked=True)
    assert location.startswith(proxy.url)
    assert proxy.blob_bytes_received == len(BLOB)
    assert [(r.method, r.status) for r in proxy.requests] == [
        ("POST", 202),
        ("PATCH", 202),
        ("PUT", 201),
    ]
    resp, body = request(proxy.url, "GET", BLOB_PATH + "?ns=x")
    assert resp.status == 200 and body == BLOB
    assert proxy.blob_bytes_sent == len(BLOB)
    assert proxy.requests[-1].query == "ns=x"


def test_monolithic_upload_and_keepalive_downloads(proxy: FaultProxy) -> None:
    upload(proxy.url, BLOB, chunked=False)
    assert proxy.blob_bytes_received == len(BLOB)
    conn = connect(proxy.url)
    try:
        for method in ("HEAD", "GET", "GET"):  # one connection, three requests
            conn.request(method, BLOB_PATH)
            resp = conn.getresponse()
            body = resp.read()
            assert resp.status == 200
            assert resp.getheader("Content-Length") == str(len(BLOB))
            assert resp.getheader("Docker-Content-Digest") == DIGEST
            assert body == (b"" if method == "HEAD" else BLOB)
    finally:
        conn.close()
    assert proxy.blob_bytes_sent == 2 * len(BLOB)


@pytest.mark.usefixtures("pushed")
def test_drop_after_resets_connection_once(proxy: FaultProxy) -> None:
    rule = proxy.add(Fault(path=r"/blobs/sha256:", action=DropAfter(100_000)))
    conn = connect(proxy.url)
    try:
        conn.request("GET", BLOB_PATH)
        resp = conn.getresponse()
        assert resp.status == 200
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            resp.read()
    finally:
        conn.close()
    assert proxy.blob_bytes_sent == 100_000 and rule.hits == 1
    resp, body = request(proxy.url, "GET", BLOB_PATH)  # times=1: the next one is clean
    assert body == BLOB and rule.hits == 1
    assert [r.fault for r in proxy.requests] == ["DropAfter", None]


@pytest.mark.usefixtures("pushed")
def test_truncate_keeps_content_length_and_closes(proxy: FaultProxy) -> None:
    proxy.add(Fault(path=r"/blobs/", action=Truncate(1234)))
    conn = connect(proxy.url)
    try:
        conn.request("GET", BLOB_PATH)
        resp = conn.getresponse()
        assert resp.getheader("Content-Length") == str(len(BLOB))
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert info.value.partial == BLOB[:1234]
    finally:
        conn.close()
    assert proxy.blob_bytes_sent == 1234


def test_status_answers_without_registry(proxy: FaultProxy) -> None:
    proxy.add(Fault(method="*", path=r"/v2/", times=2, action=Status(503, body=b"down")))
    proxy.add(Fault(path=r"/v2/", action=Status(429, {"Retry-After": "7"})))
    resp, body = request(proxy.url, "POST", f"/v2/{REPO}/blobs/uploads/", body=b"x" * 5000)
    assert (resp.status, body) == (503, b"down")
    resp, body = request(proxy.url, "GET", "/v2/")
    assert resp.status == 503
    resp, body = request(proxy.url, "GET", "/v2/")
    assert resp.status == 429 and resp.getheader("Retry-After") == "7"
    resp, body = request(proxy.url, "GET", "/v2/")
    assert resp.status == 200  # the script is used up: the real registry answers
    assert [r.status for r in proxy.requests] == [503, 503, 429, 200]


@pytest.mark.usefixtures("pushed")
def test_redirect_to_second_host(registry: RegistryServer, proxy: FaultProxy) -> None:
    with RedirectHost(registry.url) as storage:
        assert storage.url != proxy.url
        proxy.add(Fault(path=r"/blobs/sha256:", action=RedirectTo(storage)))
        resp, _ = request(
            proxy.url, "GET", BLOB_PATH + "?x=1", headers={"Authorization": "Bearer t"}
        )
        assert resp.status == 307
        assert resp.getheader("Location") == f"{storage.url}{BLOB_PATH}?x=1"
        record = proxy.requests[-1]
        assert record.has_authorization and record.headers["Authorization"] == "<redacted>"
        assert "Bearer t" not in repr(record)

        resp, body = request(storage.url, "GET", BLOB_PATH, headers={"Authorization": "Bearer t"})
        assert resp.status == 400 and storage.rejected == [BLOB_PATH]
        resp, body = request(storage.url, "GET", BLOB_PATH)
        assert resp.status == 200 and body == BLOB
        assert storage.bytes_sent == len(BLOB)
        resp, body = request(storage.url, "GET", BLOB_PATH, headers={"Range": "bytes=10-19"})
        assert resp.status == 206 and body == BLOB[10:20]
        resp, _ = request(storage.url, "GET", f"/v2/{REPO}/manifests/latest")
        assert resp.status == 404


@pytest.mark.usefixtures("pushed")
def test_strip_header(proxy: FaultProxy) -> None:
    proxy.add(Fault(method="HEAD", path=r"/blobs/", action=StripHeader("Docker-Content-Digest")))
    resp, _ = request(proxy.url, "HEAD", BLOB_PATH)
    assert resp.status == 200 and resp.getheader("Docker-Content-Digest") is None
    assert resp.getheader("Content-Length") == str(len(BLOB))
    resp, _ = request(proxy.url, "HEAD", BLOB_PATH)
    assert resp.getheader("Docker-Content-Digest") == DIGEST


@pytest.mark.usefixtures("pushed")
def test_flip_byte(proxy: FaultProxy) -> None:
    proxy.add(Fault(path=r"/blobs/", action=FlipByte(200_001)))
    resp, body = request(proxy.url, "GET", BLOB_PATH)
    assert resp.status == 200 and len(body) == len(BLOB)
    assert [i for i in range(len(BLOB)) if body[i] != BLOB[i]] == [200_001]
    assert body[200_001] == BLOB[200_001] ^ 0xFF


@pytest.mark.usefixtures("pushed")
def test_stall_holds_body_until_released(proxy: FaultProxy) -> None:
    stall = Stall(after_bytes=5000, seconds=600)
    proxy.add(Fault(path=r"/blobs/", action=stall))
    conn = connect(proxy.url)
    try:
        conn.request("GET", BLOB_PATH)
        resp = conn.getresponse()
        assert resp.read(5000) == BLOB[:5000]
        assert stall.started.wait(WAIT)
        assert proxy.blob_bytes_sent == 5000  # nothing more leaves while stalled
        stall.release()
        assert resp.read() == BLOB[5000:]
    finally:
        conn.close()


def test_drop_request_after_cuts_upload(proxy: FaultProxy) -> None:
    resp, _ = request(proxy.url, "POST", f"/v2/{REPO}/blobs/uploads/", body=b"")
    location = urlsplit(resp.getheader("Location") or "")
    proxy.add(Fault(method="PATCH", path=r"/blobs/uploads/", action=DropRequestAfter(10_000)))
    big = BLOB * 20  # 6 MB: more than the socket buffers hold
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        request(proxy.url, "PATCH", f"{location.path}?{location.query}", body=big)
    assert proxy.blob_bytes_received == 10_000
    assert proxy.requests[-1].status is None and proxy.requests[-1].fault == "DropRequestAfter"


@pytest.mark.usefixtures("pushed")
def test_stop_ends_stalled_connection(registry: RegistryServer) -> None:
    stall = Stall(after_bytes=1000, seconds=600)
    proxy = FaultProxy(registry.url)
    proxy.start()
    proxy.add(Fault(path=r"/blobs/", action=stall))
    conn = connect(proxy.url)
    try:
        conn.request("GET", BLOB_PATH)
        resp = conn.getresponse()
        assert resp.read(1000) == BLOB[:1000]
        assert stall.started.wait(WAIT)
        threads_before = threading.active_count()
        url = proxy.url
        proxy.stop()  # releases the stall, cuts the connection and joins every thread
        assert threading.active_count() < threads_before
        with pytest.raises((http.client.IncompleteRead, ConnectionError)):
            resp.read()
    finally:
        conn.close()
    with pytest.raises(ConnectionError):
        request(url, "GET", "/v2/")


@pytest.mark.usefixtures("pushed")
def test_parallel_downloads_count_every_byte(proxy: FaultProxy) -> None:
    bodies: list[bytes] = []
    lock = threading.Lock()

    def fetch() -> None:
        _, body = request(proxy.url, "GET", BLOB_PATH)
        with lock:
            bodies.append(body)

    workers = [threading.Thread(target=fetch) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)
    assert bodies == [BLOB] * 6
    assert proxy.blob_bytes_sent == 6 * len(BLOB)
    assert len(proxy.requests) == 6


@pytest.mark.usefixtures("pushed")
def test_redirect_host_can_answer_401(registry: RegistryServer) -> None:
    with RedirectHost(registry.url, reject_status=401) as storage:
        resp, _ = request(storage.url, "HEAD", BLOB_PATH, headers={"Authorization": "Basic eA=="})
        assert resp.status == 401 and storage.rejected == [BLOB_PATH]
        resp, _ = request(storage.url, "HEAD", BLOB_PATH)
        assert resp.status == 200 and resp.getheader("Content-Length") == str(len(BLOB))
