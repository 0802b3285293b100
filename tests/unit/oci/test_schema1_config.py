"""Tests of lorry.oci.schema1_config: the config docker synthesises from a schema1 manifest.

The manifests in tests/unit/data/schema1 were written for lorry; each ``*.config.json`` is the
config worked out by hand from moby's rules (``MakeConfigFromV1Config``, ``HistoryFromConfig``,
Go's encoding/json), not produced by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lorry import mediatypes as mt
from lorry.digest import DiffID, Digest
from lorry.errors import InvalidInputError
from lorry.oci import ImageConfig, Schema1Manifest
from lorry.oci.schema1_config import Schema1Layer, config_from_schema1, layers_to_fetch

DATA = Path(__file__).parent.parent / "data" / "schema1"
EMPTY = Digest.parse("sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4")
DIFF_IDS = [DiffID(Digest("sha256", c * 64)) for c in "123"]
A, B, C, D, E = (c * 64 for c in "abcde")


def _manifest(name: str) -> Schema1Manifest:
    return Schema1Manifest.parse((DATA / f"{name}.json").read_bytes())


def _expected(name: str) -> bytes:
    return (DATA / f"{name}.config.json").read_bytes().rstrip(b"\n")


def _blob(name: str) -> Digest:
    return Digest.of(name.encode())


def _built(v1: list[dict[str, Any]], blobs: list[Digest] | None = None) -> Schema1Manifest:
    """An unsigned manifest from v1 JSON objects, top first."""
    blobs = blobs or [_blob(str(i)) for i in range(len(v1))]
    doc = {
        "schemaVersion": 1,
        "name": "t/t",
        "tag": "1",
        "architecture": "amd64",
        "fsLayers": [{"blobSum": str(b)} for b in blobs],
        "history": [{"v1Compatibility": json.dumps(h)} for h in v1],
    }
    return Schema1Manifest.parse(json.dumps(doc).encode())


@pytest.mark.parametrize("name", ["alpine_unsigned", "alpine_signed"])
def test_config_of_a_modern_image(name: str) -> None:
    m = _manifest(name)
    assert m.signed == (name == "alpine_signed")
    config = config_from_schema1(m, DIFF_IDS[:2])
    assert config == _expected("alpine")
    parsed = ImageConfig.parse(config, mt.DOCKER_CONFIG)
    assert parsed.diff_ids == tuple(DIFF_IDS[:2])
    assert (parsed.os, parsed.architecture) == ("linux", "amd64")
    assert [h.empty_layer for h in parsed.history] == [False, False, True]
    assert parsed.history[1].author == "Jane <jane@example.com>"


def test_signed_and_unsigned_fetch_the_same_layers() -> None:
    want = [Schema1Layer(_blob("a")), Schema1Layer(_blob("b"))]
    assert layers_to_fetch(_manifest("alpine_signed")) == want
    assert layers_to_fetch(_manifest("alpine_unsigned")) == want
    assert all(x.media_type == mt.DOCKER_LAYER_GZIP and x.size is None for x in want)


def test_old_docker_config_goes_through_the_v1_struct() -> None:
    config = config_from_schema1(_manifest("old_docker_signed"), DIFF_IDS[:2])
    assert config == _expected("old_docker")


def test_repeated_and_throwaway_layers() -> None:
    m = _manifest("repeated_unsigned")
    assert len(m.fs_layers) == 5
    assert layers_to_fetch(m) == [
        Schema1Layer(EMPTY),
        Schema1Layer(EMPTY),
        Schema1Layer(_blob("x")),
    ]
    assert config_from_schema1(m, DIFF_IDS) == _expected("repeated")


def test_fix_layers_first_is_the_same() -> None:
    m = _manifest("repeated_unsigned")
    assert config_from_schema1(m.fix_layers(), DIFF_IDS) == config_from_schema1(m, DIFF_IDS)


@pytest.mark.parametrize("count", [0, 1, 3])
def test_diff_id_count_must_match(count: int) -> None:
    with pytest.raises(InvalidInputError, match=f"{count} DiffIDs given for 2 layers"):
        config_from_schema1(_manifest("alpine_unsigned"), DIFF_IDS[:count])


def test_broken_parent_chain() -> None:
    m = _manifest("broken_parent_unsigned")
    message = f"Invalid parent ID. Expected {A}, got {E}."
    with pytest.raises(InvalidInputError, match=message):
        layers_to_fetch(m)
    with pytest.raises(InvalidInputError, match=message):
        config_from_schema1(m, DIFF_IDS[:3])


def test_base_layer_with_a_parent() -> None:
    m = _built([{"id": B, "parent": A}, {"id": A, "parent": D}])
    with pytest.raises(InvalidInputError, match="Invalid parent ID in the base layer"):
        layers_to_fetch(m)


@pytest.mark.parametrize(
    ("v1", "message"),
    [
        ({"throwaway": "yes"}, "field 'throwaway': not a JSON boolean"),
        ({"created": "yesterday"}, "field 'created': 'yesterday' is not an RFC 3339 time"),
        ({"created": 5}, "field 'created': not a JSON string"),
        ({"container_config": {"Cmd": 5}}, "field 'Cmd': not a list of strings"),
        ({"container_config": []}, "field 'container_config': not a JSON object"),
        ({"config": {"Labels": {"a": 1}}}, "field 'Labels': not a JSON string"),
        ({"Size": 1.5}, "field 'Size': not a JSON integer"),
        ({"Size": 2**63}, "field 'Size': 9223372036854775808 overflows int64"),
    ],
)
def test_v1_json_of_the_wrong_type(v1: dict[str, Any], message: str) -> None:
    m = _built([{"id": B, "parent": A}, {"id": A} | v1])
    with pytest.raises(InvalidInputError, match=r"history\[1\]\.v1Compatibility.*" + message):
        config_from_schema1(m, DIFF_IDS[:2])


def test_cmd_as_one_string_and_case_insensitive_fields() -> None:
    top = {"id": A, "docker_version": "17.03.0-ce", "CONTAINER_CONFIG": {"cmd": "echo hi"}}
    config = json.loads(config_from_schema1(_built([top | {"Author": "x"}]), DIFF_IDS[:1]))
    assert config["history"] == [{"created": "0001-01-01T00:00:00Z", "author": "x",
                                  "created_by": "echo hi"}]  # fmt: skip
    # Without the fallback the raw keys stay as written; only exact v1-only keys go.
    assert config["CONTAINER_CONFIG"] == {"cmd": "echo hi"} and "id" not in config


def test_every_layer_throwaway_still_lists_diff_ids() -> None:
    top = {"id": A, "docker_version": "1.12.0", "throwaway": True}
    config = json.loads(config_from_schema1(_built([top]), []))
    assert config["rootfs"] == {"type": "layers", "diff_ids": []}
    assert layers_to_fetch(_built([top])) == []


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


_TYPED = {"id", "parent", "comment", "created", "container", "container_config", "author"}
_TYPED |= {"docker_version", "config", "architecture", "variant", "os", "size", "throwaway"}
_V1_ONLY = {"parent_id", "layer_id"}


@given(st.dictionaries(st.text(), _JSON, max_size=6), st.integers(8, 40))
@example({"parent_id": None, "layer_id": "x", "Parent_ID": 1}, 8)
def test_modern_top_entry_keeps_every_other_key(extra: dict[str, Any], minor: int) -> None:
    # Keys that are not typed v1 fields pass through as raw JSON, under sorted keys.
    # Exact keys moby's MakeConfigFromV1Config deletes are dropped too (hypothesis found one).
    top = {k: v for k, v in extra.items() if k.lower() not in _TYPED and k not in _V1_ONLY}
    top |= {"id": A, "parent": B, "docker_version": f"1.{minor}.3", "Size": 7}
    m = _built([top, {"id": B}])
    raw = config_from_schema1(m, DIFF_IDS[:2])
    keys = [k for k, _ in json.loads(raw, object_pairs_hook=lambda p: p)]
    assert keys == sorted(keys)
    want = {k: v for k, v in top.items() if k not in ("id", "parent", "Size")}
    want["rootfs"] = {"type": "layers", "diff_ids": [str(d) for d in DIFF_IDS[:2]]}
    want["history"] = [{"created": "0001-01-01T00:00:00Z"}] * 2
    assert json.loads(raw) == want
    assert b"<" not in raw and b">" not in raw and b"&" not in raw
