"""Proxy selection from the environment and lorry.toml, and NO_PROXY matching."""

from __future__ import annotations

import base64

import pytest

from lorry.errors import InvalidInputError
from lorry.registry.client import RegistrySession
from lorry.registry.proxy import ProxyRules, parse_proxy_url


def test_parse_with_userinfo_builds_basic_auth_and_hides_it_from_repr() -> None:
    proxy = parse_proxy_url("http://al%40ice:s3cr%3At@proxy.example:3128")
    assert (proxy.host, proxy.port) == ("proxy.example", 3128)
    assert proxy.authorization == "Basic " + base64.b64encode(b"al@ice:s3cr:t").decode()
    assert "s3cr" not in repr(proxy)
    assert proxy.netloc == "proxy.example:3128"


def test_bare_host_port_means_http_and_default_port_is_80() -> None:
    assert parse_proxy_url("proxy.example:8080").port == 8080
    assert parse_proxy_url("http://proxy.example").port == 80


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://proxy.example:notaport", "does not parse"),
        ("socks5://proxy.example:1080", "unsupported proxy scheme"),
        ("https://proxy.example:443", "TLS to the proxy"),
        ("http://:3128", "no host"),
    ],
)
def test_bad_proxy_url_names_its_source(url: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment) as info:
        parse_proxy_url(url, source="HTTPS_PROXY")
    assert str(info.value).startswith("HTTPS_PROXY:")


def test_env_both_cases_lower_wins_and_setting_overrides() -> None:
    env = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "HTTP_PROXY": "h:3"}
    rules = ProxyRules.from_env(env)
    assert rules.https is not None and rules.https.host == "lower"
    assert rules.http is not None and rules.http.host == "h"
    over = ProxyRules.from_env(env, setting="http://conf:9")
    assert over.for_url("https", "r.example") == over.for_url("http", "r.example")
    assert over.https is not None and over.https.host == "conf"


def test_no_env_means_direct() -> None:
    assert ProxyRules.from_env({}).for_url("https", "r.example") is None


@pytest.mark.parametrize(
    ("no_proxy", "host", "port", "bypass"),
    [
        ("*", "anything.example", 443, True),
        ("example.com", "example.com", 443, True),
        ("example.com", "a.b.example.com", 443, True),
        (".example.com", "a.example.com", 443, True),
        ("example.com", "notexample.com", 443, False),
        ("10.0.0.0/8", "10.1.2.3", 5000, True),
        ("10.0.0.0/8", "11.1.2.3", 5000, False),
        ("10.0.0.0/8", "ten.example", 5000, False),
        ("fd00::/8", "[fd00::1]", 443, True),
        ("r.example:5000", "r.example", 5000, True),
        ("r.example:5000", "r.example", 443, False),
        ("127.0.0.2", "127.0.0.2", 80, True),
        ("127.0.0.2", "127.0.0.3", 80, False),
        (" A.Example , other ", "x.a.example", 443, True),
    ],
)
def test_no_proxy_entries(no_proxy: str, host: str, port: int, bypass: bool) -> None:
    rules = ProxyRules.from_env({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": no_proxy})
    assert rules.bypassed(host, port) is bypass
    assert (rules.for_url("https", host, port) is None) is bypass


def test_loopback_goes_direct_when_asked_as_go_does() -> None:
    env = {"HTTPS_PROXY": "http://p:3128", "HTTP_PROXY": "http://p:3128"}
    go = ProxyRules.from_env(env, direct_loopback=True)
    for host in ("localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"):
        assert go.for_url("https", host, 5000) is None, host
    assert go.for_url("https", "r.example", 443) is not None
    assert go.for_url("http", "10.0.0.1", 80) is not None
    assert ProxyRules.from_env(env).for_url("http", "127.0.0.1", 5000) is not None


def test_a_session_reads_the_proxy_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://[bad")
    with pytest.raises(InvalidInputError, match="HTTPS_PROXY"):
        RegistrySession()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = RegistrySession()
    assert session.pool.proxies.for_url("https", "r.example") is not None
    assert session.pool.proxies.for_url("https", "127.0.0.1") is None
