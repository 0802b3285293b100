"""The registry fixture in each mode, exercised with plain HTTP and with skopeo."""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path

import pytest

from lorry.digest import Digest
from lorry.errors import UnavailableError
from lorry.testing.pytest_plugin import ImageBuilder, RegistryFactory, TokenIssuerFactory
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import SkopeoError, push_layout, skopeo_copy, skopeo_inspect_raw

pytestmark = pytest.mark.integration

GRANTS = {"alice": {"repo/*": ["pull", "push"], "readonly": ["pull"]}}


def _http(
    url: str, *, method: str = "GET", auth: str | None = None, accept: str | None = None
) -> tuple[int, Message, bytes]:
    req = urllib.request.Request(url, method=method)
    if auth:
        req.add_header("Authorization", auth)
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_plain_registry_answers_and_logs(registry: RegistryServer) -> None:
    status, headers, _ = _http(registry.url + "/v2/")
    assert status == 200
    assert headers["Docker-Distribution-Api-Version"] == "registry/2.0"
    assert (
        registry.host == f"127.0.0.1:{registry.port}" and registry.url == f"http://{registry.host}"
    )
    assert registry.storage.is_dir() and registry.storage.parent == registry.log_path.parent
    assert '"GET /v2/ HTTP/1.1" 200' in registry.log_text()


def test_basic_auth(registry_factory: RegistryFactory, image_builder: ImageBuilder) -> None:
    server = registry_factory(auth="basic", users={"alice": "s3cret"})
    status, headers, _ = _http(server.url + "/v2/")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic ")
    assert _http(server.url + "/v2/", auth=_basic("alice", "wrong"))[0] == 401
    assert _http(server.url + "/v2/", auth=_basic("alice", "s3cret"))[0] == 200
    built = image_builder(layers=2)
    with pytest.raises(SkopeoError):
        push_layout(built, server, "app")
    ref = push_layout(built, server, "app", dest_creds=("alice", "s3cret"))
    assert Digest.of(skopeo_inspect_raw(ref, creds="alice:s3cret")) == built.manifest_digest


@pytest.mark.parametrize(("algorithm", "key_header"), [("RS256", "x5c"), ("ES256", "kid")])
def test_token_auth_push_pull_and_denied_scope(
    registry_factory: RegistryFactory,
    token_issuer_factory: TokenIssuerFactory,
    image_builder: ImageBuilder,
    tmp_path: Path,
    algorithm: str,
    key_header: str,
) -> None:
    issuer = token_issuer_factory(
        users={"alice": "pw"}, grants=GRANTS, algorithm=algorithm, key_header=key_header
    )
    server = registry_factory(auth="token", token_issuer=issuer)
    status, headers, _ = _http(server.url + "/v2/")
    assert status == 401
    challenge = headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ") and f'realm="{issuer.realm}"' in challenge
    assert f'service="{issuer.service}"' in challenge

    built = image_builder(layers=2)
    ref = push_layout(built, server, "repo/app", dest_creds=("alice", "pw"))
    assert Digest.of(skopeo_inspect_raw(ref, creds=("alice", "pw"))) == built.manifest_digest
    skopeo_copy(ref, f"oci:{tmp_path / 'pulled'}:x", src_creds=("alice", "pw"))
    assert any(r.scopes_granted == ["repository:repo/app:pull,push"] for r in issuer.requests)

    with pytest.raises(SkopeoError, match=r"denied|unauthorized"):
        push_layout(built, server, "readonly", dest_creds=("alice", "pw"))
    denied = [r for r in issuer.requests if "repository:readonly:pull,push" in r.scopes_requested]
    granted = [g for r in denied for g in r.scopes_granted if ":readonly:" in g]
    assert granted and all(g == "repository:readonly:pull" for g in granted)
    # skopeo tried a cross-repo mount from the repository it pushed to before: the issuer
    # saw the escalated source scope and granted it.
    assert any("repository:repo/app:pull" in r.scopes_granted for r in denied)


def test_token_without_push_scope_gets_insufficient_scope(
    registry_factory: RegistryFactory, token_issuer_factory: TokenIssuerFactory
) -> None:
    issuer = token_issuer_factory(users={"alice": "pw"}, grants=GRANTS)
    server = registry_factory(auth="token", token_issuer=issuer)
    query = urllib.parse.urlencode(
        {"service": issuer.service, "scope": "repository:readonly:pull,push"}
    )
    _, _, body = _http(f"{issuer.realm}?{query}", auth=_basic("alice", "pw"))
    bearer = "Bearer " + json.loads(body)["token"]
    status, headers, _ = _http(
        server.url + "/v2/readonly/blobs/uploads/", method="POST", auth=bearer
    )
    assert status == 401
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    # The registry lists the actions in map order, so either order is right.
    assert re.search(
        r'scope="repository:readonly:(pull,push|push,pull)"', headers["WWW-Authenticate"]
    )
    # The same token is good enough to read.
    assert _http(server.url + "/v2/readonly/tags/list", auth=bearer)[0] == 404


def test_pull_through_cache_serves_the_upstream_image(
    registry_factory: RegistryFactory, image_builder: ImageBuilder, tmp_path: Path
) -> None:
    upstream = registry_factory()
    built = image_builder(layers=2, seed=11)
    push_layout(built, upstream, "library/cached")
    cache = registry_factory(proxy_remote_url=upstream.url)
    assert cache.config["proxy"] == {"remoteurl": upstream.url}
    via_cache = f"docker://{cache.host}/library/cached:latest"
    assert skopeo_inspect_raw(via_cache) == built.manifest_bytes
    skopeo_copy(via_cache, f"oci:{tmp_path / 'out'}:x", extra_args=["--preserve-digests"])
    for digest in built.layer_digests:
        pulled = tmp_path / "out" / "blobs" / "sha256" / digest.encoded
        assert pulled.read_bytes() == built.blob_path(digest).read_bytes()
    assert f"GET /v2/library/cached/blobs/{built.layer_digests[0]}" in upstream.log_text()
    # Manifests are stored synchronously: the cache answers by digest with upstream gone.
    upstream.stop()
    by_digest = f"docker://{cache.host}/library/cached@{built.manifest_digest}"
    assert skopeo_inspect_raw(by_digest) == built.manifest_bytes
    with pytest.raises(SkopeoError):
        push_layout(built, cache, "library/pushed")  # a pull-through cache is read-only


@pytest.mark.parametrize("delete", [True, False])
def test_delete_option(
    registry_factory: RegistryFactory, image_builder: ImageBuilder, delete: bool
) -> None:
    server = registry_factory(delete=delete, schema1=True)
    assert server.config["storage"]["delete"] == {"enabled": delete}
    assert server.config["compatibility"] == {"schema1": {"enabled": True}}
    built = image_builder(layers=1)
    push_layout(built, server, "deletable")
    url = f"{server.url}/v2/deletable/manifests/{built.manifest_digest}"
    assert _http(url, method="DELETE")[0] == (202 if delete else 405)


def test_a_registry_that_cannot_start_reports_its_log(registry_factory: RegistryFactory) -> None:
    with pytest.raises(
        UnavailableError, match=r"(?s)starting docker-registry.*lookup 256\.0\.0\.1"
    ):
        registry_factory(extra_config={"http": {"addr": "256.0.0.1:1"}})


def test_stop_and_context_manager(tmp_path: Path) -> None:
    from lorry.testing.registry import start_registry

    with start_registry(tmp_path / "r") as server:
        assert _http(server.url + "/v2/")[0] == 200
    assert server.process.returncode is not None
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "/v2/", timeout=5)
