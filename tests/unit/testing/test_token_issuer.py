"""The token issuer's HTTP exchanges and the JWTs it signs (checked with cryptography)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from lorry.testing._token_keys import libtrust_key_id
from lorry.testing.token_issuer import TokenIssuer

GRANTS = {"alice": {"repo/*": ["pull", "push"], "other": ["pull"]}}


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[TokenIssuer]:
    with TokenIssuer(tmp_path, users={"alice": "pw"}, grants=GRANTS, expires_in=2) as iss:
        yield iss


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _decode(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    head, claims, sig = token.split(".")
    return (
        json.loads(_unb64(head)),
        json.loads(_unb64(claims)),
        f"{head}.{claims}".encode(),
        _unb64(sig),
    )


def _request(
    url: str, *, data: dict[str, str] | None = None, auth: tuple[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body)
    if auth:
        req.add_header(
            "Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _get(
    issuer: TokenIssuer, *scopes: str, auth: tuple[str, str] | None = None, **extra: str
) -> tuple[int, dict[str, Any]]:
    query = urllib.parse.urlencode(
        [("service", issuer.service), *[("scope", s) for s in scopes], *extra.items()]
    )
    return _request(f"{issuer.realm}?{query}", auth=auth)


def test_get_with_basic_credentials_grants_the_intersection(issuer: TokenIssuer) -> None:
    status, reply = _get(
        issuer, "repository:repo/a:pull,push", "repository:other:push,pull", auth=("alice", "pw")
    )
    assert status == 200
    assert reply["token"] == reply["access_token"]
    assert reply["expires_in"] == 2 and "refresh_token" not in reply
    _, claims, _, _ = _decode(reply["token"])
    assert claims["access"] == [
        {"type": "repository", "name": "repo/a", "actions": ["pull", "push"]},
        {"type": "repository", "name": "other", "actions": ["pull"]},
    ]
    assert (claims["iss"], claims["sub"], claims["aud"]) == (issuer.issuer, "alice", issuer.service)
    assert claims["exp"] == claims["iat"] + 2 and claims["nbf"] <= claims["iat"]
    assert claims["jti"]
    (rec,) = issuer.requests
    assert (rec.method, rec.account, rec.status) == ("GET", "alice", 200)
    assert rec.scopes_requested == ["repository:repo/a:pull,push", "repository:other:push,pull"]
    assert rec.scopes_granted == ["repository:repo/a:pull,push", "repository:other:pull"]


def test_bad_password_and_anonymous_get_401(issuer: TokenIssuer) -> None:
    assert _get(issuer, "repository:repo/a:pull", auth=("alice", "nope"))[0] == 401
    assert _get(issuer, "repository:repo/a:pull", auth=("mallory", "pw"))[0] == 401
    assert _get(issuer, "repository:repo/a:pull")[0] == 401
    assert [r.status for r in issuer.requests] == [401, 401, 401]


def test_anonymous_grants(issuer: TokenIssuer) -> None:
    issuer.anonymous_grants = {"public/*": ["pull"]}
    status, reply = _get(issuer, "repository:public/x:pull,push", "repository:repo/a:pull")
    assert status == 200
    _, claims, _, _ = _decode(reply["token"])
    assert claims["sub"] == ""
    assert claims["access"] == [{"type": "repository", "name": "public/x", "actions": ["pull"]}]


def test_post_password_offline_then_refresh(issuer: TokenIssuer) -> None:
    form = {
        "grant_type": "password",
        "username": "alice",
        "password": "pw",
        "service": issuer.service,
        "scope": "repository:repo/a:pull repository:other:pull",
        "access_type": "offline",
        "client_id": "t",
    }
    status, reply = _request(issuer.realm, data=form)
    assert status == 200 and reply["refresh_token"]
    _, claims, _, _ = _decode(reply["access_token"])
    assert [a["name"] for a in claims["access"]] == ["repo/a", "other"]
    status, again = _request(
        issuer.realm,
        data={
            "grant_type": "refresh_token",
            "refresh_token": reply["refresh_token"],
            "service": issuer.service,
            "scope": "repository:repo/b:push",
        },
    )
    assert status == 200 and "refresh_token" not in again
    _, claims, _, _ = _decode(again["access_token"])
    assert claims["sub"] == "alice" and claims["access"][0]["name"] == "repo/b"
    assert [(r.method, r.grant_type, r.refresh_token_issued) for r in issuer.requests] == [
        ("POST", "password", True),
        ("POST", "refresh_token", False),
    ]


def test_post_refusals(issuer: TokenIssuer) -> None:
    assert (
        _request(issuer.realm, data={"grant_type": "refresh_token", "refresh_token": "x"})[0] == 401
    )
    assert (
        _request(
            issuer.realm, data={"grant_type": "password", "username": "alice", "password": "x"}
        )[0]
        == 401
    )
    assert _request(issuer.realm, data={"grant_type": "client_credentials"})[0] == 400
    issuer.post_404 = True
    assert (
        _request(
            issuer.realm, data={"grant_type": "password", "username": "alice", "password": "pw"}
        )[0]
        == 404
    )
    assert issuer.requests[-1].status == 404


def test_get_offline_token_and_token_field(issuer: TokenIssuer) -> None:
    _, reply = _get(issuer, "repository:repo/a:pull", auth=("alice", "pw"), offline_token="true")
    assert reply["refresh_token"]
    issuer.token_field = "access_token"
    _, reply = _get(issuer, "repository:repo/a:pull", auth=("alice", "pw"))
    assert "access_token" in reply and "token" not in reply
    issuer.token_field = "token"
    _, reply = _get(issuer, "repository:repo/a:pull", auth=("alice", "pw"))
    assert "token" in reply and "access_token" not in reply


def test_unknown_path_is_404(issuer: TokenIssuer) -> None:
    assert _request(issuer.url + "/nope")[0] == 404


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
def test_x5c_token_verifies_with_the_certificate(tmp_path: Path, algorithm: str) -> None:
    issuer = TokenIssuer(tmp_path, algorithm=algorithm)  # type: ignore[arg-type]
    header, claims, signed, sig = _decode(issuer.issue("bob", [], "svc"))
    assert header["alg"] == algorithm and claims["aud"] == "svc"
    cert = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert cert == x509.load_pem_x509_certificate(issuer.cert_path.read_bytes())
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        key.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert isinstance(key, ec.EllipticCurvePublicKey) and len(sig) == 64
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
    issuer.stop()


def test_kid_header_is_the_libtrust_key_id(tmp_path: Path) -> None:
    issuer = TokenIssuer(tmp_path, key_header="kid", algorithm="ES256")
    header, _, _, _ = _decode(issuer.issue("bob", [], "svc"))
    assert "x5c" not in header
    cert = x509.load_pem_x509_certificate(issuer.cert_path.read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert header["kid"] == libtrust_key_id(spki)
    groups = header["kid"].split(":")
    assert len(groups) == 12 and all(len(g) == 4 for g in groups)
    issuer.stop()
