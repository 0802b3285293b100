"""Every fault of the fault proxy ends in a verified success or one clear error line."""

from __future__ import annotations

import threading

import pytest
from regclient_helpers import proxied_client, push_blob, put_empty_image, random_blob, read_all

from lorry import mediatypes as mt
from lorry.digest import Digest, Verifier
from lorry.errors import (
    IntegrityError,
    LorryError,
    StallError,
    UnavailableError,
)
from lorry.registry.client import RegistryClient
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

REPO = "regclient/faults"
SIZE = 3 * 1024 * 1024 + 123
DATA, DIGEST = random_blob(SIZE, seed=42)
BLOB_RE = rf"/blobs/{DIGEST}$"


@pytest.fixture
def client(registry: RegistryServer, proxy: FaultProxy, make_session) -> RegistryClient:
    return proxied_client(registry, proxy, make_session, REPO, DATA)


def resume_download(client: RegistryClient, attempts: int = 3) -> tuple[bytes, list[str]]:
    """What a caller of open_blob does: resume from the offset reached, verify at the end."""
    verifier = Verifier(DIGEST, SIZE, what=f"blob {DIGEST}")
    out = bytearray()
    errors: list[str] = []
    for _ in range(attempts):
        try:
            with client.open_blob(DIGEST, len(out), size=SIZE, verifier=verifier) as reader:
                for chunk in reader:
                    out += chunk
            return bytes(out), errors
        except UnavailableError as exc:
            errors.append(str(exc))
    raise AssertionError(f"did not finish: {errors}")


def test_dropped_connection_resumes_with_range(client: RegistryClient, proxy: FaultProxy) -> None:
    proxy.add(Fault(path=BLOB_RE, action=DropAfter(1_000_000)))
    data, errors = resume_download(client)
    assert data == DATA
    assert len(errors) == 1 and f"from 127.0.0.1:{proxy.host.split(':')[1]}/{REPO}" in errors[0]
    ranged = [r for r in proxy.requests if r.method == "GET" and "Range" in r.headers]
    assert len(ranged) == 1 and ranged[0].status == 206
    assert (
        ranged[0].headers["Range"].startswith("bytes=") and ranged[0].headers["Range"] != "bytes=0-"
    )


def test_truncated_body_under_correct_length_resumes(
    client: RegistryClient, proxy: FaultProxy
) -> None:
    proxy.add(Fault(path=BLOB_RE, action=Truncate(2_000_000)))
    data, errors = resume_download(client)
    assert data == DATA
    assert len(errors) == 1 and "body ended at byte 2000000 of" in errors[0]


def test_stalled_body_times_out_then_resumes(
    registry: RegistryServer, proxy: FaultProxy, make_session, client: RegistryClient
) -> None:
    stall = Stall(after_bytes=500_000, seconds=30.0)
    proxy.add(Fault(path=BLOB_RE, action=stall))
    impatient = make_session(timeout=2.0).client(proxy.host, REPO)  # loaded CI: no early timeout
    verifier = Verifier(DIGEST, SIZE)
    out = bytearray()
    with (
        pytest.raises(StallError, match=r"fetching blob sha256:\w{12}… from .*no data"),
        impatient.open_blob(DIGEST, size=SIZE, verifier=verifier) as reader,
    ):
        for chunk in reader:
            out += chunk
    stall.release()
    with impatient.open_blob(DIGEST, len(out), size=SIZE, verifier=verifier) as reader:
        out += b"".join(reader)
    assert bytes(out) == DATA


def test_flipped_byte_is_an_integrity_error(client: RegistryClient, proxy: FaultProxy) -> None:
    proxy.add(Fault(path=BLOB_RE, action=FlipByte(12345)))
    with pytest.raises(IntegrityError) as info:
        read_all(client, DIGEST, SIZE)
    assert f"blob sha256:{DIGEST.short}" in str(info.value) and REPO in str(info.value)
    assert "digest mismatch" in str(info.value)
    assert read_all(client, DIGEST, SIZE) == DATA  # the rule fired once: a retry succeeds


@pytest.mark.parametrize("code", [500, 502, 503])
def test_server_errors_are_retried(
    client: RegistryClient, proxy: FaultProxy, fake_time, code: int
) -> None:
    proxy.add(Fault(method="*", path=BLOB_RE, times=2, action=Status(code)))
    assert read_all(client, DIGEST, SIZE) == DATA
    assert client.stat_blob(DIGEST) == SIZE
    assert fake_time.slept == [0.5, 1.0]  # exponential backoff, on the injected clock


def test_persistent_503_ends_in_one_clear_error(client: RegistryClient, proxy: FaultProxy) -> None:
    proxy.add(Fault(path=BLOB_RE, times=-1, action=Status(503)))
    with pytest.raises(UnavailableError) as info:
        read_all(client, DIGEST, SIZE)
    message = str(info.value)
    assert message.startswith(f"fetching blob sha256:{DIGEST.short}… from {client.registry}/{REPO}")
    assert "503" in message and "\n" not in message
    assert len([r for r in proxy.requests if r.status == 503]) == 4


def test_429_retry_after_is_honoured_and_shared(
    client: RegistryClient, proxy: FaultProxy, fake_time
) -> None:
    proxy.add(Fault(path=BLOB_RE, action=Status(429, headers={"Retry-After": "7"})))
    assert read_all(client, DIGEST, SIZE) == DATA
    assert fake_time.slept == [7.0]


def test_429_beyond_the_cap_fails_at_once(client: RegistryClient, proxy: FaultProxy) -> None:
    body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}'
    proxy.add(Fault(path=BLOB_RE, action=Status(429, {"Retry-After": "3600"}, body)))
    with pytest.raises(UnavailableError) as info:
        read_all(client, DIGEST, SIZE)
    assert info.value.retry_after == 3600
    assert "TOOMANYREQUESTS" in str(info.value) and "longer than the 60s" in str(info.value)
    assert f"{client.registry}/{REPO}" in str(info.value)


def test_backoff_is_shared_by_parallel_requests(
    client: RegistryClient, proxy: FaultProxy, fake_time
) -> None:
    proxy.add(Fault(method="HEAD", path=BLOB_RE, times=1, action=Status(429, {"Retry-After": "5"})))
    assert client.stat_blob(DIGEST) == SIZE
    before = len(fake_time.slept)
    # Every later request to the host waits out the same window once, not per request.
    results: list[int | None] = []
    threads = [
        threading.Thread(target=lambda: results.append(client.stat_blob(DIGEST))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [SIZE] * 4
    assert fake_time.slept[:before] == [5.0] and len(fake_time.slept) == before


def test_redirect_never_forwards_authorization_and_resume_goes_home(
    registry_factory, make_session
) -> None:
    users = {"alice": "pw-alice"}
    server = registry_factory(auth="basic", users=users)

    class Creds:
        username, password, identity_token = "alice", "pw-alice", None

    session = make_session(credentials=lambda _h: Creds())
    push_blob(session.client(server.host, REPO), DATA)
    import base64

    basic = "Basic " + base64.b64encode(b"alice:pw-alice").decode()
    with (
        RedirectHost(server.url, upstream_headers={"Authorization": basic}) as storage,
        FaultProxy(server.url) as proxy,
    ):
        proxy.add(Fault(path=BLOB_RE, times=1, action=RedirectTo(storage)))
        client = make_session(credentials=lambda _h: Creds()).client(proxy.host, REPO)
        assert client.stat_blob(DIGEST) == SIZE  # learns the Basic challenge of the registry
        verifier = Verifier(DIGEST, SIZE)
        with client.open_blob(DIGEST, size=SIZE, verifier=verifier) as reader:
            first = reader.read(1_000_000)
            assert (
                "127.0.0.1" in reader.url and reader.url != f"{proxy.url}/v2/{REPO}/blobs/{DIGEST}"
            )
        # The storage URL may have expired: resuming asks the registry again, with Range.
        with client.open_blob(DIGEST, len(first), size=SIZE, verifier=verifier) as reader:
            rest = b"".join(reader)
        assert first + rest == DATA
        assert storage.rejected == []
        assert storage.bytes_sent >= len(first)
        gets = [r for r in proxy.requests if r.method == "GET" and DIGEST.hex in r.path]
        assert [r.status for r in gets] == [307, 206]  # the resume went to the registry
        assert all(r.has_authorization for r in gets)


def test_missing_docker_content_digest_is_tolerated(
    registry: RegistryServer, proxy: FaultProxy, client: RegistryClient, make_session
) -> None:
    raw = put_empty_image(make_session().client(registry.host, REPO), "nodigest")
    proxy.add(
        Fault(method="*", path="/manifests/", times=-1, action=StripHeader("Docker-Content-Digest"))
    )
    assert client.get_manifest("nodigest") == (raw, mt.OCI_MANIFEST, Digest.of(raw))
    info = client.head_manifest("nodigest")  # HEAD gave no digest: falls back to GET
    assert info is not None and info.digest == Digest.of(raw)
    methods = [r.method for r in proxy.requests if "/manifests/" in r.path]
    assert methods == ["GET", "HEAD", "GET"]


def test_flipped_manifest_byte_fails_a_digest_reference(
    registry: RegistryServer, proxy: FaultProxy, client: RegistryClient, make_session
) -> None:
    raw = put_empty_image(make_session().client(registry.host, REPO), "flip", b'{"k":"vvvv"}')
    digest = Digest.of(raw)
    proxy.add(Fault(path="/manifests/", action=FlipByte(len(raw) - 4)))
    with pytest.raises(IntegrityError, match=f"fetching manifest {digest} from .*digest mismatch"):
        client.get_manifest(digest)


def test_dropped_chunk_upload_is_replayed(
    client: RegistryClient, proxy: FaultProxy, make_session
) -> None:
    data, digest = random_blob(700_000, seed=9)
    proxy.add(Fault(method="PATCH", path="/blobs/uploads/", action=DropRequestAfter(100_000)))
    session = client.start_upload()
    got = client.upload_blob(
        session, _Once(data), digest, len(data), chunked=True, chunk_size=256_000
    )
    assert got == digest
    assert client.stat_blob(digest) == len(data)


def test_dropped_monolithic_upload_of_a_pipe_is_one_clear_error(
    client: RegistryClient, proxy: FaultProxy
) -> None:
    data, digest = random_blob(700_000, seed=10)
    proxy.add(Fault(method="PUT", path="/blobs/uploads/", action=DropRequestAfter(100_000)))
    session = client.start_upload()
    with pytest.raises(LorryError) as info:
        client.upload_blob(session, _Once(data), digest, len(data))
    assert f"pushing blob sha256:{digest.short}… to {client.registry}/{REPO}" in str(info.value)
    assert session.done
    assert [r.method for r in proxy.requests][-1] == "DELETE"
    assert client.stat_blob(digest) is None


class _Once:
    """A stream that cannot seek (like a pipe)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else min(len(self._data), self._pos + n)
        out = bytes(self._data[self._pos : end])
        self._pos = end
        return out
