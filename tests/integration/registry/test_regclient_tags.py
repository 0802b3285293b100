"""Tags and the catalog with Link pagination."""

from __future__ import annotations

import json
import logging

import pytest
from regclient_helpers import push_blob, run_lorry

from lorry import mediatypes as mt

pytestmark = pytest.mark.integration


def test_lorry_ls_lists_250_tags_with_page_size_10(registry_factory, make_session) -> None:
    server = registry_factory()
    client = make_session().client(server.host, "regclient/many")
    config = push_blob(client, b"{}")
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(config), "size": 2},
        "layers": [],
    }
    raw = json.dumps(doc).encode()
    tags = [f"t{i:03d}" for i in range(250)]
    for tag in tags:
        client.put_manifest(tag, raw, mt.OCI_MANIFEST)
    result = run_lorry("ls", "--page-size", "10", f"{server.host}/regclient/many")
    assert result.returncode == 0, result.stderr
    # docker-registry 2.8 ignores ``n`` for tags and answers in map order; the catalog below
    # is where its Link pagination is exercised.
    assert sorted(result.stdout.decode().split()) == tags
    assert sorted(client.list_tags(page_size=7)) == tags


def test_catalog_follows_relative_links(
    registry_factory, make_session, caplog: pytest.LogCaptureFixture
) -> None:
    server = registry_factory()
    session = make_session()
    names = [f"regclient/cat{i:02d}" for i in range(23)]
    for name in names:
        push_blob(session.client(server.host, name), b"x")
    with caplog.at_level(logging.DEBUG, logger="lorry.registry.transport"):
        assert session.catalog(server.host, page_size=10) == names
    pages = [r for r in caplog.messages if "/v2/_catalog" in r]
    assert len(pages) == 3  # 10 + 10 + 3, each page found through the previous page's Link
    assert session.catalog(server.host, page_size=5000) == names
