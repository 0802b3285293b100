"""Mirrors: a dead mirror is skipped, a pull-through cache serves reads, writes go upstream."""

from __future__ import annotations

import pytest
from regclient_helpers import push_blob, put_empty_image, random_blob, read_all

from lorry.registry.config import RegistryConfig
from lorry.testing.faultproxy import FaultProxy
from lorry.testing.registry import free_port

pytestmark = pytest.mark.integration


def test_pull_through_cache_mirror(registry_factory, make_session, image_builder) -> None:
    upstream = registry_factory()
    cache = registry_factory(proxy_remote_url=upstream.url)
    direct = make_session().client(upstream.host, "library/mirrored")
    data, digest = random_blob(200_000, seed=5)
    push_blob(direct, data)
    raw = put_empty_image(direct, "v1")
    with FaultProxy(cache.url) as counted:
        dead = f"http://127.0.0.1:{free_port()}"
        cfg = RegistryConfig.from_mapping({upstream.host: {"mirrors": [dead, counted.url]}})
        client = make_session(config=cfg).client(upstream.host, "library/mirrored")
        assert client.get_manifest("v1")[0] == raw
        assert read_all(client, digest, len(data)) == data
        assert client.stat_blob(digest) == len(data)
        served = [(r.method, r.status) for r in counted.requests]
        assert ("GET", 200) in served and ("HEAD", 200) in served
        # A blob the upstream lacks: the cache says 404, the upstream is asked and says 404.
        assert client.stat_blob(random_blob(10, seed=6)[1]) is None
        # Writes never go to mirrors.
        before = len(counted.requests)
        push_blob(client, b"pushed upstream")
        assert len(counted.requests) == before
