"""Pure parsing around the protocol: Link pagination and manifest media types."""

from __future__ import annotations

import json

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, InvalidInputError
from lorry.registry.manifests import manifest_media_type, parse_ref
from lorry.registry.tags import next_link
from lorry.registry.uploads import _with_digest


def test_next_link_relative_and_absolute() -> None:
    base = "http://r:5000/v2/app/tags/list?n=10"
    rel = ['</v2/app/tags/list?last=t9&n=10>; rel="next"']
    assert next_link(rel, base) == "http://r:5000/v2/app/tags/list?last=t9&n=10"
    both = ['<https://x/first>; rel="first", <https://x/2>; rel=next']
    assert next_link(both, base) == "https://x/2"
    assert next_link(['<https://x/p>; rel="prev"'], base) is None
    assert next_link([], base) is None


def test_upload_location_keeps_its_query() -> None:
    d = Digest.of(b"")
    assert _with_digest("http://r/u?_state=abc", d) == f"http://r/u?_state=abc&digest={d}"
    assert _with_digest("http://r/u", d) == f"http://r/u?digest={d}"


def test_media_type_from_document_checked_against_content_type() -> None:
    doc = json.dumps({"schemaVersion": 2, "mediaType": mt.DOCKER_MANIFEST_V2}).encode()
    assert manifest_media_type(doc, mt.DOCKER_MANIFEST_V2 + "; charset=utf-8", "w") == (
        mt.DOCKER_MANIFEST_V2
    )
    assert manifest_media_type(doc, "application/json", "w") == mt.DOCKER_MANIFEST_V2
    with pytest.raises(IntegrityError, match="does not match"):
        manifest_media_type(doc, mt.OCI_MANIFEST, "w")


def test_media_type_sniffed_when_absent() -> None:
    index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert manifest_media_type(index, None, "w") == mt.OCI_INDEX
    v1 = json.dumps({"schemaVersion": 1, "signatures": []}).encode()
    assert manifest_media_type(v1, "text/plain", "w") == mt.DOCKER_MANIFEST_V1_SIGNED
    with pytest.raises(InvalidInputError):
        manifest_media_type(b"[1]", None, "w")


def test_parse_ref() -> None:
    d = Digest.of(b"x")
    assert parse_ref(str(d)) == d
    assert parse_ref("latest") == "latest"
    with pytest.raises(InvalidInputError):
        parse_ref("sha256:short")
