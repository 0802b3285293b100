"""Push under bearer-token auth (mount scope escalation, denied source scope) and upload faults."""

from __future__ import annotations

import pytest
from push_helpers import layer_statuses

from lorry.ops.session import SessionOptions
from lorry.registry.credentials import Credentials
from lorry.store import Store
from lorry.testing.builder import BuiltImage, LayerSpec
from lorry.testing.faultproxy import DropRequestAfter, Fault, FaultProxy, Status, StripHeader
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import skopeo_inspect_raw
from lorry.testing.store_fill import fill_store
from lorry.transfer import RetryPolicy

pytestmark = pytest.mark.integration

USERS = {"alice": "pw-alice-123", "bob": "pw-bob-456"}
GRANTS = {
    "alice": {"base/*": ["pull", "push"], "app/*": ["pull", "push"]},
    "bob": {"app/*": ["pull", "push"]},
}


def as_user(user: str) -> SessionOptions:
    creds = Credentials(username=user, password=USERS[user])
    return SessionOptions(credentials=lambda _host: creds, timeout=10.0)


def test_token_auth_mounts_with_escalated_scope_or_uploads_when_denied(
    registry_factory, token_issuer_factory, image_builder, store: Store, do_push
) -> None:
    issuer = token_issuer_factory(users=USERS, grants=GRANTS)
    server = registry_factory(auth="token", token_issuer=issuer)
    built = image_builder(layers=2, seed=711)
    ids = [d.short for d in built.diff_ids]
    fill_store(store, built.layout, f"{server.host}/base/src:v1")
    do_push(f"{server.host}/base/src:v1", session_options=as_user("alice"))

    # bob may not read base/src: the issuer drops that scope, so the layers are uploaded.
    result, sink = do_push(
        f"{server.host}/base/src:v1", f"{server.host}/app/b:v1", session_options=as_user("bob")
    )
    assert layer_statuses(sink) == dict.fromkeys(ids, "Pushed")
    denied = [r for r in issuer.requests if r.account == "bob" and len(r.scopes_requested) > 1]
    assert denied and all("repository:base/src:pull" not in r.scopes_granted for r in denied)
    assert result.manifest_digest == built.manifest_digest
    raw = skopeo_inspect_raw(f"docker://{server.host}/app/b:v1", creds=("bob", USERS["bob"]))
    assert raw == built.manifest_bytes

    _, sink = do_push(
        f"{server.host}/base/src:v1",
        f"{server.host}/base/copy:v1",
        session_options=as_user("alice"),
    )
    assert layer_statuses(sink) == dict.fromkeys(ids, "Mounted from base/src")
    escalated = [r for r in issuer.requests if r.account == "alice" and len(r.scopes_requested) > 1]
    assert escalated
    for r in escalated:
        assert r.scopes_requested == ["repository:base/copy:pull,push", "repository:base/src:pull"]
        assert "repository:base/src:pull" in r.scopes_granted


CHUNK = 256 * 1024


@pytest.fixture
def big_layer(image_builder) -> BuiltImage:
    built = image_builder(
        layers=[LayerSpec(files=4, size=1_600_000, random_fraction=1.0)], seed=712
    )
    assert built.layer_sizes[0] > 4 * CHUNK
    return built


def cut_third_patch(proxy: FaultProxy, after: int) -> Fault:
    """Let two PATCHes through untouched (a no-op rule), then cut the third after ``after``."""
    proxy.add(Fault(method="PATCH", path="/blobs/uploads/", times=2, action=StripHeader("X-No")))
    return proxy.add(Fault(method="PATCH", path="/blobs/uploads/", action=DropRequestAfter(after)))


def patch_starts(proxy: FaultProxy) -> list[tuple[int, int | None]]:
    """(first byte, status) of every PATCH, in order."""
    return [
        (int(r.headers["Content-Range"].split("-")[0]), r.status)
        for r in proxy.requests
        if r.method == "PATCH"
    ]


def test_dropped_chunked_upload_resumes_from_the_registry_offset(
    proxy: FaultProxy, registry: RegistryServer, big_layer: BuiltImage, store: Store, do_push
) -> None:
    """The connection drops as the third chunk starts: the session goes on from byte 2×CHUNK.

    (docker-registry 2.8 cancels an upload whose stored size no longer matches the state it
    handed out, so a cut that leaves part of a chunk stored cannot be resumed there; see the
    next test.)
    """
    name = f"{proxy.host}/push/chunked:v1"
    fill_store(store, big_layer.layout, name)
    drop = cut_third_patch(proxy, 0)
    result, sink = do_push(name, chunked=True, chunk_size=CHUNK)
    assert drop.hits == 1
    layer = patch_starts(proxy)[:-1]  # the last PATCH carries the config
    assert layer[:4] == [(0, 202), (CHUNK, 202), (2 * CHUNK, None), (2 * CHUNK, 202)]
    assert [s for s, _ in layer].count(0) == 1  # one session, never restarted
    status_checks = [r for r in proxy.requests if r.method == "GET" and "/uploads/" in r.path]
    assert [r.status for r in status_checks] == [204]  # asked where the upload stood
    size = big_layer.layer_sizes[0]
    assert proxy.blob_bytes_received == size + len(big_layer.config_bytes)  # nothing resent
    assert layer_statuses(sink) == {big_layer.diff_ids[0].short: "Pushed"}
    assert result.manifest_digest == big_layer.manifest_digest
    assert skopeo_inspect_raw(f"docker://{registry.host}/push/chunked:v1") == (
        big_layer.manifest_bytes
    )


def test_chunk_cut_midway_restarts_the_layer_and_the_push_succeeds(
    proxy: FaultProxy, registry: RegistryServer, big_layer: BuiltImage, store: Store, do_push
) -> None:
    name = f"{proxy.host}/push/chunked-cut:v1"
    fill_store(store, big_layer.layout, name)
    cut_third_patch(proxy, 100_000)
    result, sink = do_push(name, chunked=True, chunk_size=CHUNK, retry=RetryPolicy(base_delay=0.01))
    assert [s for s, _ in patch_starts(proxy)].count(0) == 3  # cut session, new session, config
    assert "Retrying in 1 second" in sink.statuses(big_layer.diff_ids[0].short)
    assert result.manifest_digest == big_layer.manifest_digest
    assert skopeo_inspect_raw(f"docker://{registry.host}/push/chunked-cut:v1") == (
        big_layer.manifest_bytes
    )


def test_refused_monolithic_put_falls_back_to_chunks(
    proxy: FaultProxy, registry: RegistryServer, image_builder, store: Store, do_push
) -> None:
    built = image_builder(layers=1, seed=713)
    name = f"{proxy.host}/push/fallback:v1"
    fill_store(store, built.layout, name)
    proxy.add(Fault(method="PUT", path="/blobs/uploads/", action=Status(413)))
    result, sink = do_push(name, chunk_size=16 * 1024)
    assert layer_statuses(sink) == {built.diff_ids[0].short: "Pushed"}
    methods = [r.method for r in proxy.requests if "/blobs/uploads/" in r.path]
    assert "PATCH" in methods[methods.index("PUT") :]
    assert result.manifest_digest == built.manifest_digest
    assert skopeo_inspect_raw(f"docker://{registry.host}/push/fallback:v1") == built.manifest_bytes
