"""Tests of lorry.oci.parse_manifest: type detection, Content-Type agreement, ambiguity, limits."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorry import mediatypes as mt
from lorry.errors import InvalidInputError, LorryError, UnsupportedError
from lorry.oci import MAX_MANIFEST_SIZE, Index, Manifest, Schema1Manifest, parse_manifest


@pytest.mark.parametrize(
    ("name", "kind", "media_type"),
    [
        ("manifest_docker_v2", Manifest, mt.DOCKER_MANIFEST_V2),
        ("manifest_oci", Manifest, mt.OCI_MANIFEST),
        ("manifest_oci_artifact", Manifest, mt.OCI_MANIFEST),
        ("index_oci", Index, mt.OCI_INDEX),
        ("list_docker", Index, mt.DOCKER_MANIFEST_LIST),
        ("schema1_signed", Schema1Manifest, mt.DOCKER_MANIFEST_V1_SIGNED),
        ("schema1_unsigned", Schema1Manifest, mt.DOCKER_MANIFEST_V1),
    ],
)
@pytest.mark.parametrize("header", ["own", None, "application/json", "text/plain; charset=utf-8"])
def test_dispatch(fixture_bytes: dict[str, bytes], name: str, kind: type, media_type: str,
                  header: str | None) -> None:  # fmt: skip
    content_type = media_type if header == "own" else header
    doc = parse_manifest(fixture_bytes[name], content_type)
    assert isinstance(doc, kind)
    assert doc.media_type == media_type
    assert doc.raw == fixture_bytes[name]


def _doc(fixture_bytes: dict[str, bytes], name: str, **changes: Any) -> bytes:
    doc = json.loads(fixture_bytes[name])
    for key, value in changes.items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return json.dumps(doc).encode()


def test_content_type_must_agree_with_media_type(fixture_bytes: dict[str, bytes]) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_manifest(fixture_bytes["manifest_docker_v2"], mt.OCI_MANIFEST)
    assert str(info.value) == (
        f"manifest: Content-Type is {mt.OCI_MANIFEST} but the document's mediaType is "
        f"{mt.DOCKER_MANIFEST_V2}"
    )
    with pytest.raises(InvalidInputError, match="Content-Type is"):
        parse_manifest(fixture_bytes["index_oci"], mt.DOCKER_MANIFEST_LIST)
    assert (
        parse_manifest(fixture_bytes["index_oci"], mt.OCI_INDEX.upper()).media_type == mt.OCI_INDEX
    )


@pytest.mark.parametrize(
    ("name", "changes", "content_type", "message"),
    [
        ("manifest_oci", {"manifests": []}, None, "must not have a 'manifests' field"),
        ("manifest_docker_v2", {"manifests": []}, None, "must not have a 'manifests' field"),
        ("index_oci", {"layers": []}, None, "must not have a 'layers' field"),
        ("index_oci", {"config": {}}, None, "must not have a 'config' field"),
        ("list_docker", {"layers": []}, None, "must not have a 'layers' field"),
        ("manifest_oci", {"mediaType": None, "manifests": []}, None, "must not have a 'config'"),
        ("manifest_oci", {"mediaType": None}, mt.OCI_INDEX, "must not have a 'config' field"),
        ("index_oci", {"mediaType": None}, mt.OCI_MANIFEST, "must not have a 'manifests' field"),
        ("schema1_unsigned", {"layers": []}, None, "must not have a 'layers' field"),
    ],
)
def test_ambiguous_documents_are_refused(
    fixture_bytes: dict[str, bytes], name: str, changes: dict[str, Any],
    content_type: str | None, message: str,
) -> None:  # fmt: skip
    with pytest.raises(InvalidInputError, match=message):
        parse_manifest(_doc(fixture_bytes, name, **changes), content_type)


def test_oci_without_media_type_is_told_by_header_or_fields(
    fixture_bytes: dict[str, bytes],
) -> None:
    bare_manifest = _doc(fixture_bytes, "manifest_oci", mediaType=None)
    bare_index = _doc(fixture_bytes, "index_oci", mediaType=None)
    assert isinstance(parse_manifest(bare_manifest, None), Manifest)
    assert isinstance(parse_manifest(bare_manifest, mt.OCI_MANIFEST), Manifest)
    assert isinstance(parse_manifest(bare_index, "application/octet-stream"), Index)
    with pytest.raises(InvalidInputError, match="neither manifests nor config/layers"):
        parse_manifest(b'{"schemaVersion": 2}', None)


def test_docker_types_need_their_media_type_field(fixture_bytes: dict[str, bytes]) -> None:
    raw = _doc(fixture_bytes, "manifest_docker_v2", mediaType=None)
    with pytest.raises(InvalidInputError, match="document has no mediaType field"):
        parse_manifest(raw, mt.DOCKER_MANIFEST_V2)


@pytest.mark.parametrize(
    ("version", "error", "message"),
    [
        (1, InvalidInputError, "schemaVersion 1 is not 2"),
        (3, InvalidInputError, "schemaVersion 3 is not 2"),
        ("2", InvalidInputError, "'schemaVersion' is not an integer"),
        (True, InvalidInputError, "'schemaVersion' is not an integer"),
        (2.0, InvalidInputError, "'schemaVersion' is not an integer"),
        (None, InvalidInputError, "missing required field 'schemaVersion'"),
    ],
)
def test_schema_version(
    fixture_bytes: dict[str, bytes], version: Any, error: type[Exception], message: str
) -> None:
    raw = _doc(fixture_bytes, "manifest_oci", schemaVersion=version)
    if version is None:
        raw = _doc(fixture_bytes, "manifest_oci", schemaVersion=None)
    with pytest.raises(error, match=message):
        parse_manifest(raw)


def test_schema_version_without_any_type_hint() -> None:
    with pytest.raises(UnsupportedError, match="unsupported schemaVersion 3"):
        parse_manifest(b'{"schemaVersion": 3, "layers": []}')
    with pytest.raises(InvalidInputError, match="schemaVersion 2 is not 1"):
        parse_manifest(b'{"schemaVersion": 2, "fsLayers": []}', mt.DOCKER_MANIFEST_V1)


@pytest.mark.parametrize(
    ("body_type", "header"),
    [
        ("application/vnd.oci.artifact.manifest.v1+json", None),
        (mt.OCI_CONFIG, None),
        (None, "application/vnd.oci.artifact.manifest.v1+json"),
    ],
)
def test_unknown_types_are_unsupported(body_type: str | None, header: str | None) -> None:
    doc: dict[str, Any] = {"schemaVersion": 2, "blobs": []}
    if body_type:
        doc["mediaType"] = body_type
    with pytest.raises(UnsupportedError, match="unsupported manifest media type"):
        parse_manifest(json.dumps(doc).encode(), header)


def test_size_limit_is_4_mib(fixture_bytes: dict[str, bytes]) -> None:
    raw = fixture_bytes["manifest_oci"].rstrip()
    exact = raw[:-1] + b" " * (MAX_MANIFEST_SIZE - len(raw)) + b"}"
    assert len(exact) == MAX_MANIFEST_SIZE == 4 * 1024 * 1024
    assert isinstance(parse_manifest(exact), Manifest)
    with pytest.raises(InvalidInputError, match="4194305 bytes is over the 4194304-byte limit"):
        parse_manifest(exact + b" ")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "not JSON"),
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"\xff\xfe{}", "not UTF-8 JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'"x"', "not a JSON object"),
        (b'{"schemaVersion": 2, "mediaType": 5}', "'mediaType' is not a string"),
    ],
)
def test_not_a_document(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_manifest(raw, mt.OCI_MANIFEST)


def test_typed_parsers_refuse_other_kinds(fixture_bytes: dict[str, bytes]) -> None:
    with pytest.raises(InvalidInputError, match="expected schema1"):
        Schema1Manifest.parse(fixture_bytes["manifest_oci"])
    with pytest.raises(InvalidInputError, match="expected an image manifest"):
        Manifest.parse(fixture_bytes["schema1_signed"])


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(["schemaVersion", "mediaType", "config", "layers", "manifests",
                         "fsLayers", "history", "signatures", "name", "subject"])  # fmt: skip
_types = st.sampled_from([None, mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST_V2,
                          mt.DOCKER_MANIFEST_V1_SIGNED, "application/json"])  # fmt: skip


@given(st.dictionaries(_keys, _json | st.sampled_from([1, 2, mt.OCI_MANIFEST])), _types)
def test_only_lorry_errors_escape(doc: dict[str, Any], content_type: str | None) -> None:
    with contextlib.suppress(LorryError):
        parse_manifest(json.dumps(doc).encode(), content_type)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_raise_lorry_errors(raw: bytes) -> None:
    with contextlib.suppress(LorryError):
        parse_manifest(raw)
