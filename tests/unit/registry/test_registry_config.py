"""Endpoints, mirrors and the plain-HTTP rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorry.errors import AuthError, InvalidInputError
from lorry.registry.auth import Authenticator
from lorry.registry.challenge import Challenge
from lorry.registry.config import RegistryConfig, is_loopback
from lorry.registry.session import HttpPool, Origin


def test_loopback_hosts() -> None:
    assert is_loopback("127.0.0.1:5000") and is_loopback("127.3.4.5") and is_loopback("[::1]:80")
    assert is_loopback("localhost:5000")
    assert not is_loopback("registry.example:5000") and not is_loopback("10.0.0.1")


def test_docker_hub_and_schemes() -> None:
    cfg = RegistryConfig.from_mapping({"insecure.example": {"insecure": True}})
    assert cfg.endpoint("docker.io").base_url == "https://registry-1.docker.io"
    assert cfg.endpoint("index.docker.io").auth_name == "docker.io"
    # docker's rule: insecure (loopback by default) is HTTPS unverified first, then plain HTTP
    for host in ("127.0.0.1:5000", "insecure.example", "localhost"):
        ep = cfg.endpoint(host)
        assert (ep.base_url, ep.insecure, ep.http_fallback) == (f"https://{host}", True, True)
    ep = cfg.endpoint("ghcr.io")
    assert (ep.base_url, ep.insecure, ep.http_fallback) == ("https://ghcr.io", False, False)


def test_insecure_false_makes_loopback_strict_and_tls_verify_false_frees_every_host() -> None:
    cfg = RegistryConfig.from_mapping({"127.0.0.1:5000": {"insecure": False}})
    assert not cfg.insecure("127.0.0.1:5000") and not cfg.endpoint("127.0.0.1:5000").http_fallback
    assert not cfg.allows_plain_http("127.0.0.1:5000") and cfg.allows_plain_http("127.0.0.1:5001")
    loose = RegistryConfig.from_mapping({"127.0.0.1:5000": {"insecure": False}}, tls_verify=False)
    assert loose.insecure("127.0.0.1:5000") and loose.insecure("ghcr.io")
    assert loose.endpoint("ghcr.io").http_fallback
    # a host configured without a port is the same host on HTTP's and HTTPS's default ports
    named = RegistryConfig.from_mapping({"r.example": {"insecure": True}})
    assert named.insecure("r.example:443") and named.insecure("r.example:80")
    assert not named.insecure("r.example:5000")


def test_mirrors_come_first_in_order() -> None:
    cfg = RegistryConfig.from_mapping(
        {"docker.io": {"mirrors": ["https://m1.example/", "http://127.0.0.1:5001"]}}
    )
    eps = cfg.pull_endpoints("docker.io")
    assert [e.base_url for e in eps] == [
        "https://m1.example",
        "http://127.0.0.1:5001",
        "https://registry-1.docker.io",
    ]
    assert [e.mirror for e in eps] == [True, True, False]
    assert eps[0].auth_name == "m1.example"


def test_bad_config_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError):
        RegistryConfig.from_mapping({"r": {"mirrors": "https://one"}})
    with pytest.raises(InvalidInputError):
        RegistryConfig.from_mapping({"r": {"mirrors": ["ftp://x"]}}).pull_endpoints("r")


class _Creds:
    username = "alice"
    password = "pw-never-in-clear"
    identity_token = None


def test_credentials_never_go_in_clear_to_a_remote_host() -> None:
    cfg = RegistryConfig()
    auth = Authenticator(HttpPool(), lambda name: _Creds(), cfg, clock=lambda: 0.0)
    remote = Origin("http", "registry.example", 80)
    auth.challenged(remote, "registry.example", [], ['Basic realm="r"'])
    with pytest.raises(AuthError, match="plain HTTP"):
        auth.authorization(remote, "registry.example", [])
    local = Origin("http", "127.0.0.1", 5000)
    auth.challenged(local, "127.0.0.1:5000", [], ['Basic realm="r"'])
    assert (auth.authorization(local, "127.0.0.1:5000", []) or "").startswith("Basic ")
    assert Challenge("basic").realm is None


def test_unreadable_ca_file_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    cfg = RegistryConfig.from_mapping({"r.example": {"ca_file": str(missing)}})
    with pytest.raises(InvalidInputError, match=f"CA file {missing} for registry r.example"):
        cfg.ssl_context("r.example")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    cfg = RegistryConfig.from_mapping({"r.example": {"ca_file": str(bad)}})
    with pytest.raises(InvalidInputError, match="CA file"):
        cfg.ssl_context("r.example")


def test_basic_credentials_to_a_named_insecure_host_warn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = RegistryConfig.from_mapping({"registry.example": {"insecure": True}})
    auth = Authenticator(HttpPool(), lambda name: _Creds(), cfg, clock=lambda: 0.0)
    remote = Origin("http", "registry.example", 80)
    auth.challenged(remote, "registry.example", [], ['Basic realm="r"'])
    with caplog.at_level("WARNING"):
        for _ in range(3):
            assert (auth.authorization(remote, "registry.example", []) or "").startswith("Basic ")
    warned = [r.getMessage() for r in caplog.records if "plain HTTP" in r.getMessage()]
    assert len(warned) == 1 and "registry.example" in warned[0], warned
    caplog.clear()
    local = Origin("http", "127.0.0.1", 5000)
    auth.challenged(local, "127.0.0.1:5000", [], ['Basic realm="r"'])
    with caplog.at_level("WARNING"):
        auth.authorization(local, "127.0.0.1:5000", [])
    assert not caplog.records, "loopback is not worth a warning"


def test_a_password_in_a_mirror_url_is_dropped_and_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "hunter2-mirror-pw"
    with caplog.at_level("WARNING"):
        cfg = RegistryConfig.from_mapping(
            {"docker.io": {"mirrors": [f"https://bob:{secret}@m1.example:5000/v/"]}}
        )
    mirror = cfg.pull_endpoints("docker.io")[0]
    assert mirror.base_url == "https://m1.example:5000/v"
    assert mirror.host == "m1.example:5000" and mirror.auth_name == "m1.example:5000"
    assert [r.getMessage() for r in caplog.records] == [
        "mirror m1.example:5000 of docker.io: credentials in the URL are ignored; "
        "use lorry login m1.example:5000"
    ]
    from lorry.registry.redact import redact_text

    assert secret not in redact_text(f"mirror said {secret}")
