"""The HTTP pool through a real tinyproxy: absolute-URI requests, CONNECT, NO_PROXY, refusal."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry.errors import LorryError, UnavailableError
from lorry.registry.proxy import ProxyRules
from lorry.registry.session import HttpPool
from lorry.testing.registry import RegistryServer
from lorry.testing.tinyproxy import Tinyproxy, start_tinyproxy

pytestmark = pytest.mark.skipif(shutil.which("tinyproxy") is None, reason="needs tinyproxy")


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    proxy = start_tinyproxy(tmp_path)
    try:
        yield proxy
    finally:
        proxy.stop()


def _get(pool: HttpPool, url: str) -> int:
    with pool.send("GET", url, {}, what="probe") as resp:
        resp.drain()
        return resp.status


def test_plain_http_goes_through_proxy_and_no_proxy_bypasses(
    registry: RegistryServer, tinyproxy: Tinyproxy
) -> None:
    url = f"http://{registry.host}/v2/"
    pool = HttpPool(proxies=ProxyRules.from_env({"http_proxy": tinyproxy.url}))
    assert _get(pool, url) == 200
    pool.close()
    assert f"GET {url}" in tinyproxy.log()
    before = tinyproxy.log().count("/v2/")
    direct = HttpPool(
        proxies=ProxyRules.from_env({"HTTP_PROXY": tinyproxy.url, "NO_PROXY": "127.0.0.0/8"})
    )
    assert _get(direct, url) == 200
    direct.close()
    assert tinyproxy.log().count("/v2/") == before


def test_https_opens_a_connect_tunnel(registry: RegistryServer, tinyproxy: Tinyproxy) -> None:
    # The shared registry speaks plain HTTP, so TLS fails after the tunnel: the CONNECT is
    # what this test checks (the TLS registry end-to-end is not built yet).
    pool = HttpPool(proxies=ProxyRules.from_env({"HTTPS_PROXY": tinyproxy.url}))
    with pytest.raises(LorryError) as info:
        _get(pool, f"https://{registry.host}/v2/")
    pool.close()
    assert "proxy refused" not in str(info.value)
    assert f"CONNECT {registry.host}" in tinyproxy.log()


def test_refused_connect_is_one_clear_error(registry: RegistryServer, tmp_path: Path) -> None:
    proxy = start_tinyproxy(tmp_path, connect_ports=[443])
    try:
        pool = HttpPool(proxies=ProxyRules.from_env({"HTTPS_PROXY": proxy.url}))
        with pytest.raises(UnavailableError) as info:
            _get(pool, f"https://{registry.host}/v2/")
        pool.close()
    finally:
        proxy.stop()
    assert str(info.value).startswith("probe: proxy refused CONNECT: 403")
