"""Tests of lorry.oci.schema1: signed and unsigned schema1, the JWS payload, fixManifestLayers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import Schema1Manifest

ID = [Digest.of(str(i).encode()).hex for i in range(4)]


def test_signed_digest_is_of_the_payload(fixture_bytes: dict[str, bytes]) -> None:
    raw, payload = fixture_bytes["schema1_signed"], fixture_bytes["schema1_unsigned"]
    m = Schema1Manifest.parse(raw, mt.DOCKER_MANIFEST_V1_SIGNED)
    assert m.signed and m.media_type == mt.DOCKER_MANIFEST_V1_SIGNED
    assert m.payload == payload and m.raw is raw
    assert m.digest == Digest.of(payload) != Digest.of(raw)
    assert m.matches_digest(Digest.of(payload, "sha512"))
    assert (m.name, m.tag, m.architecture) == ("library/alpine", "3.4", "amd64")
    assert len(m.fs_layers) == len(m.history) == 2


def test_unsigned(fixture_bytes: dict[str, bytes]) -> None:
    raw = fixture_bytes["schema1_unsigned"]
    m = Schema1Manifest.parse(raw, "application/json")
    assert not m.signed and m.media_type == mt.DOCKER_MANIFEST_V1
    assert m.digest == Digest.of(raw)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _resign(raw: bytes, **header: Any) -> bytes:
    """The signed fixture with its protected header replaced."""
    doc = json.loads(raw)
    sig = doc["signatures"][0]
    protected = json.loads(base64.urlsafe_b64decode(sig["protected"] + "=="))
    protected.update(header)
    sig["protected"] = _b64(json.dumps(protected).encode())
    text = json.dumps(doc, indent=3).encode()
    return text


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ({"formatLength": 10**6}, "formatLength/formatTail do not fit"),
        ({"formatLength": -1}, "formatLength/formatTail do not fit"),
        ({"formatTail": _b64(b"\n]")}, "formatLength/formatTail do not fit"),
        ({"formatLength": "12"}, "'formatLength' is not an integer"),
    ],
)
def test_bad_protected_header(
    fixture_bytes: dict[str, bytes], header: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Schema1Manifest.parse(_resign(fixture_bytes["schema1_signed"], **header))


def test_cut_in_the_wrong_place_is_not_json(fixture_bytes: dict[str, bytes]) -> None:
    raw = fixture_bytes["schema1_signed"]
    with pytest.raises(InvalidInputError, match="payload: not JSON"):
        Schema1Manifest.parse(_resign(raw, formatLength=100))


def test_signatures_must_agree_and_be_well_formed(fixture_bytes: dict[str, bytes]) -> None:
    doc = json.loads(fixture_bytes["schema1_signed"])
    first = doc["signatures"][0]
    protected = json.loads(base64.urlsafe_b64decode(first["protected"] + "=="))
    protected["formatLength"] -= 1
    doc["signatures"].append(dict(first, protected=_b64(json.dumps(protected).encode())))
    with pytest.raises(InvalidInputError, match="signatures disagree"):
        Schema1Manifest.parse(json.dumps(doc, indent=3).encode())
    cases: list[tuple[list[Any], str]] = [
        ([], "signatures: empty"),
        (["x"], "not a JSON object"),
        ([dict(first, protected="***")], "not base64url"),
        ([{"protected": first["protected"]}], "missing required field 'signature'"),
    ]
    for bad, message in cases:
        doc["signatures"] = bad
        with pytest.raises(InvalidInputError, match=message):
            Schema1Manifest.parse(json.dumps(doc, indent=3).encode())


def _v1(image_id: str, parent: str = "") -> dict[str, str]:
    body = {"id": image_id, "parent": parent} if parent else {"id": image_id}
    return {"v1Compatibility": json.dumps(body)}


def _manifest(history: list[dict[str, str]], layers: int | None = None) -> bytes:
    n = len(history) if layers is None else layers
    return json.dumps({
        "schemaVersion": 1, "name": "library/x", "tag": "1", "architecture": "amd64",
        "fsLayers": [{"blobSum": str(Digest.of(str(i).encode()))} for i in range(n)],
        "history": history,
    }).encode()  # fmt: skip


def test_layer_and_history_counts() -> None:
    with pytest.raises(InvalidInputError, match="length of history not equal to number of layers"):
        Schema1Manifest.parse(_manifest([_v1(ID[0])], layers=2))
    with pytest.raises(InvalidInputError, match="no FSLayers in manifest"):
        Schema1Manifest.parse(_manifest([]))


def test_fix_layers_drops_adjacent_repeats_and_is_idempotent() -> None:
    m = Schema1Manifest.parse(
        _manifest([_v1(ID[2], ID[1]), _v1(ID[1], ID[0]), _v1(ID[1], ID[0]), _v1(ID[0])])
    )
    fixed = m.fix_layers()
    assert len(fixed.fs_layers) == len(fixed.history) == 3
    assert fixed.fs_layers == (m.fs_layers[0], m.fs_layers[2], m.fs_layers[3])
    assert fixed.fix_layers() == fixed
    assert fixed.digest == m.digest


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (
            [_v1(ID[1], ID[0]), _v1(ID[0], ID[3])],
            "Invalid parent ID in the base layer of the image.",
        ),
        (
            [_v1(ID[0]), _v1(ID[1], ID[0]), _v1(ID[0])],
            f"ID {ID[0]} appears multiple times in manifest",
        ),
        ([_v1(ID[2], ID[3]), _v1(ID[1])], f"Invalid parent ID. Expected {ID[1]}, got {ID[3]}."),
        ([_v1("abc")], "image ID 'abc' is invalid"),
        ([{"v1Compatibility": "{"}], "not JSON"),
        ([{"v1Compatibility": 5}], "'v1Compatibility' is not a string"),
    ],
)
def test_fix_layers_rejects(history: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace(".", r"\.")):
        Schema1Manifest.parse(_manifest(history)).fix_layers()


def test_fixture_chain_is_valid(fixture_bytes: dict[str, bytes]) -> None:
    m = Schema1Manifest.parse(fixture_bytes["schema1_signed"])
    assert m.fix_layers() == m
