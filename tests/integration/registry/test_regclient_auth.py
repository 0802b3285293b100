"""Basic and Bearer auth against the real registry and the test token issuer."""

from __future__ import annotations

import io
import json
import urllib.request

import pytest
from regclient_helpers import push_blob, random_blob

from lorry.errors import AuthError
from lorry.registry.auth import scope_pull
from lorry.registry.credentials import Credentials

pytestmark = pytest.mark.integration

GRANTS = {
    "alice": {"app/*": ["pull", "push"], "base/*": ["pull", "push"], "registry:catalog": ["*"]},
    "bob": {"app/*": ["pull", "push"]},
}
USERS = {"alice": "pw-alice-123", "bob": "pw-bob-456"}


@pytest.fixture
def token_registry(registry_factory, token_issuer_factory):
    issuer = token_issuer_factory(users=USERS, grants=GRANTS)
    server = registry_factory(auth="token", token_issuer=issuer)
    return server, issuer


def creds(user: str, **kw: str) -> Credentials:
    return Credentials(username=user, password=USERS[user], **kw)


def test_basic_auth(registry_factory, make_session) -> None:
    server = registry_factory(auth="basic", users=USERS)
    client = make_session(credentials=lambda _h: creds("alice")).client(server.host, "app/b")
    digest = push_blob(client, b"basic")
    assert client.stat_blob(digest) == 5
    wrong = Credentials(username="alice", password="nope")
    other = make_session(credentials=lambda _h: wrong).client(server.host, "app/b")
    with pytest.raises(AuthError, match=f"checking blob .* in {server.host}/app/b: 401"):
        other.stat_blob(digest)
    anonymous = make_session().client(server.host, "app/b")
    with pytest.raises(AuthError):
        anonymous.stat_blob(digest)


def test_bearer_tokens_cached_by_scope_one_scope_parameter_each(
    token_registry, make_session
) -> None:
    server, issuer = token_registry
    session = make_session(credentials=lambda _h: creds("alice"))
    client = session.client(server.host, "app/one")
    digest = push_blob(client, b"token")
    for _ in range(3):
        assert client.stat_blob(digest) == 5
    assert [r.scopes_requested for r in issuer.requests] == [
        ["repository:app/one:pull,push"],
        ["repository:app/one:pull"],
    ]
    assert all(r.account == "alice" and r.method == "GET" for r in issuer.requests)
    with pytest.raises(AuthError, match="token service"):
        bad = Credentials(username="alice", password="wrong")
        make_session(credentials=lambda _h: bad).client(server.host, "app/one").stat_blob(digest)


def test_mount_escalates_scope_and_falls_back_when_it_is_dropped(
    token_registry, make_session
) -> None:
    server, issuer = token_registry
    alice = make_session(credentials=lambda _h: creds("alice"))
    data, digest = random_blob(50_000, seed=3)
    push_blob(alice.client(server.host, "base/src"), data)
    assert alice.client(server.host, "app/dst").mount_blob(digest, "base/src") is True
    mount_req = issuer.requests[-1]
    assert mount_req.scopes_requested == ["repository:app/dst:pull,push", scope_pull("base/src")]
    # bob may not read base/src: the issuer drops that scope, the mount fails, bob uploads.
    bob = make_session(credentials=lambda _h: creds("bob")).client(server.host, "app/bob")
    session = bob.mount_blob(digest, "base/src")
    assert session is not True
    assert bob.upload_blob(session, io.BytesIO(data), digest, len(data)) == digest
    assert bob.stat_blob(digest) == len(data)


def test_insufficient_scope_is_retried_once_with_the_challenge_scope(
    token_registry, make_session
) -> None:
    server, issuer = token_registry
    session = make_session(credentials=lambda _h: creds("alice"))
    client = session.client(server.host, "app/scope")
    digest = push_blob(client, b"scope")
    endpoint = session.endpoint(server.host)
    url = f"{endpoint.base_url}/v2/app/scope/blobs/{digest}"
    with session.transport.request(
        "HEAD", url, endpoint=endpoint, scopes=[], what="checking", expect=(200,)
    ) as resp:
        assert resp.status == 200
    assert issuer.requests[-2].scopes_requested == []
    assert issuer.requests[-1].scopes_requested == ["repository:app/scope:pull"]


def test_expired_token_is_replaced_mid_operation(token_registry, make_session, fake_time) -> None:
    server, issuer = token_registry
    session = make_session(credentials=lambda _h: creds("alice"))
    client = session.client(server.host, "app/expiry")
    data, digest = random_blob(300_000, seed=4)
    upload = client.start_upload()
    before = len(issuer.requests)
    fake_time.now += 3600  # the cached token is now past its expires_in
    assert (
        client.upload_blob(
            upload, io.BytesIO(data), digest, len(data), chunked=True, chunk_size=100_000
        )
        == digest
    )
    assert len(issuer.requests) == before + 1
    # A token the registry refuses although lorry thinks it valid (revoked, clock skew):
    # the 401 drops it from the cache and the request is retried with a fresh one.
    issuer.expires_in = -3600
    fresh = make_session(credentials=lambda _h: creds("alice")).client(server.host, "app/expiry")
    with pytest.raises(AuthError):
        fresh.stat_blob(digest)  # every token it gets is already expired: one clear error
    issuer.expires_in = 300
    assert fresh.stat_blob(digest) == len(data)


def _refresh_token(realm: str, service: str) -> str:
    import base64

    req = urllib.request.Request(f"{realm}?service={service}&offline_token=true")
    basic = base64.b64encode(f"alice:{USERS['alice']}".encode()).decode()
    req.add_header("Authorization", f"Basic {basic}")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.load(resp)["refresh_token"])


@pytest.mark.parametrize("post_404", [False, True])
def test_identity_token_uses_oauth2_post_with_get_fallback(
    registry_factory, token_issuer_factory, make_session, post_404: bool
) -> None:
    issuer = token_issuer_factory(users=USERS, grants=GRANTS, post_404=post_404)
    server = registry_factory(auth="token", token_issuer=issuer)
    refresh = _refresh_token(issuer.realm, issuer.service)
    ident = Credentials(username="alice", password=USERS["alice"], identity_token=refresh)
    client = make_session(credentials=lambda _h: ident).client(server.host, "app/oauth")
    digest = push_blob(client, b"oauth")
    assert client.stat_blob(digest) == 5
    used = issuer.requests[1:]
    assert used[0].method == "POST" and used[0].grant_type == "refresh_token"
    if post_404:
        assert used[0].status == 404 and used[1].method == "GET" and used[1].status == 200
    else:
        assert used[0].status == 200 and used[0].account == "alice"
