"""A chunked upload whose session the registry declares lost (404 BLOB_UPLOAD_INVALID).

docker-registry 2.8 invalidates a session that saw half a chunk; whether the client learns it
from the retried PATCH or from the status GET depends on timing, so both are scripted here.
"""

from __future__ import annotations

import io
import json

import pytest
from regclient_helpers import random_blob, read_all

from lorry.errors import UnavailableError, is_retryable
from lorry.registry.client import RegistryClient
from lorry.testing.faultproxy import Fault, FaultProxy, Status, StripHeader

pytestmark = pytest.mark.integration

REPO = "regclient/session-lost"
CHUNK = 64 * 1024
INVALID = Status(
    404,
    {"Content-Type": "application/json"},
    json.dumps(
        {"errors": [{"code": "BLOB_UPLOAD_INVALID", "message": "blob upload invalid"}]}
    ).encode(),
)


@pytest.fixture
def client(proxy: FaultProxy, make_session) -> RegistryClient:
    return make_session(timeout=5.0).client(proxy.host, REPO)


def _lose_third_patch(proxy: FaultProxy) -> None:
    """Two PATCHes pass (a no-op rule), the third is answered 404 BLOB_UPLOAD_INVALID."""
    proxy.add(Fault(method="PATCH", path="/blobs/uploads/", times=2, action=StripHeader("X-No")))
    proxy.add(Fault(method="PATCH", path="/blobs/uploads/", action=INVALID))


def test_session_still_alive_at_the_status_check_is_continued(
    client: RegistryClient, proxy: FaultProxy
) -> None:
    data, digest = random_blob(5 * CHUNK + 11, seed=91)
    _lose_third_patch(proxy)
    session = client.start_upload()
    client.upload_blob(session, io.BytesIO(data), digest, len(data), chunked=True, chunk_size=CHUNK)
    assert read_all(client, digest, len(data)) == data
    starts = [
        r.headers["Content-Range"].split("-")[0] for r in proxy.requests if r.method == "PATCH"
    ]
    assert starts[:4] == ["0", str(CHUNK), str(2 * CHUNK), str(2 * CHUNK)]  # same chunk again


def test_session_gone_is_a_retryable_error_naming_the_offset(
    client: RegistryClient, proxy: FaultProxy
) -> None:
    data, digest = random_blob(5 * CHUNK + 11, seed=92)
    _lose_third_patch(proxy)
    proxy.add(Fault(method="GET", path="/blobs/uploads/", action=INVALID))
    session = client.start_upload()
    with pytest.raises(
        UnavailableError, match=f"dropped the upload session at byte {2 * CHUNK}"
    ) as e:
        client.upload_blob(
            session, io.BytesIO(data), digest, len(data), chunked=True, chunk_size=CHUNK
        )
    assert is_retryable(e.value)
    assert any(r.method == "DELETE" for r in proxy.requests)  # the dead session is cleaned up
