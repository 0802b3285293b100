"""Blob reads the fault proxy's other tests do not reach: a server that ignores Range, and
foreign-layer ``urls`` tried before the registry (issue 3, item 3)."""

from __future__ import annotations

import socket

import pytest
from regclient_helpers import proxied_client, random_blob

from lorry.digest import Verifier
from lorry.errors import UnavailableError
from lorry.registry.client import RegistryClient
from lorry.testing.faultproxy import DropAfter, Fault, FaultProxy, IgnoreRange, RedirectHost
from lorry.testing.registry import RegistryServer

pytestmark = pytest.mark.integration

REPO = "regclient/range"
SIZE = 2 * 1024 * 1024 + 77
DATA, DIGEST = random_blob(SIZE, seed=7)
BLOB_RE = rf"/blobs/{DIGEST}$"


@pytest.fixture
def client(registry: RegistryServer, proxy: FaultProxy, make_session) -> RegistryClient:
    return proxied_client(registry, proxy, make_session, REPO, DATA)


def test_resume_against_a_server_that_ignores_range_skips_the_prefix(
    client: RegistryClient, proxy: FaultProxy
) -> None:
    proxy.add(Fault(path=BLOB_RE, action=DropAfter(700_000)))
    proxy.add(Fault(path=BLOB_RE, action=IgnoreRange()))
    verifier = Verifier(DIGEST, SIZE, what=f"blob {DIGEST}")
    out = bytearray()
    with (
        pytest.raises(UnavailableError),
        client.open_blob(DIGEST, 0, size=SIZE, verifier=verifier) as r,
    ):
        for chunk in r:
            out += chunk
    offset = len(out)
    assert 0 < offset < SIZE
    with client.open_blob(DIGEST, offset, size=SIZE, verifier=verifier) as r:
        for chunk in r:
            out += chunk
    assert bytes(out) == DATA  # the verifier saw every byte once, in order
    second = [r for r in proxy.requests if r.method == "GET" and r.path.endswith(str(DIGEST))][1]
    assert second.headers.get("Range") == f"bytes={offset}-"
    assert second.status == 200  # the whole body came back; the client skipped the prefix


def test_foreign_urls_are_tried_first_without_credentials(
    registry: RegistryServer, client: RegistryClient, proxy: FaultProxy
) -> None:
    with RedirectHost(registry.url) as foreign:
        url = f"{foreign.url}/v2/{REPO}/blobs/{DIGEST}"
        with client.open_blob(DIGEST, size=SIZE, urls=[url], verify=True) as r:
            assert b"".join(r) == DATA
        assert foreign.bytes_sent >= SIZE and foreign.rejected == []
    assert not [r for r in proxy.requests if r.path.endswith(str(DIGEST))]


def test_unreachable_foreign_url_falls_back_to_the_registry(
    client: RegistryClient, proxy: FaultProxy
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/layer.tar.gz"
    with client.open_blob(DIGEST, size=SIZE, urls=["ftp://nope/x", dead], verify=True) as r:
        assert b"".join(r) == DATA
    assert [r.method for r in proxy.requests if r.path.endswith(str(DIGEST))] == ["GET"]
