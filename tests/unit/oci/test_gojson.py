"""Tests of lorry.oci._gojson: Go's JSON string escaping, compaction, times and structs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorry.errors import InvalidInputError
from lorry.oci._gojson import (
    Field,
    Kind,
    compact,
    decode_struct,
    encode_struct,
    go_string,
    go_time,
    raw_members,
)
from lorry.oci.schema1_config import _version_less


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("plain", '"plain"'),
        ('a"b\\c', '"a\\"b\\\\c"'),
        ("a && b <c>", '"a \\u0026\\u0026 b \\u003cc\\u003e"'),
        ("\n\r\t", '"\\n\\r\\t"'),
        ("\x00\x08\x0c\x1b\x7f", '"\\u0000\\u0008\\u000c\\u001b\x7f"'),
        ("é ü 日本 😀", '"é ü 日本 😀"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("lone \ud800", '"lone \ufffd"'),
    ],
)
def test_go_string(text: str, want: str) -> None:
    assert go_string(text) == want


@given(st.text())
def test_go_string_reads_back(text: str) -> None:
    decoded = json.loads(go_string(text))
    assert decoded == "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ('{ "a" : [ 1, 2 ] ,\n\t"b":{} }', '{"a":[1,2],"b":{}}'),
        ('"keep  spaces \\" and \\u00e9 and é"', '"keep  spaces \\" and \\u00e9 and é"'),
        ('["<a&b>", "\u2028"]', '["\\u003ca\\u0026b\\u003e","\\u2028"]'),
        ('"\\\\" , "x"', '"\\\\","x"'),
    ],
)
def test_compact(raw: str, want: str) -> None:
    assert compact(raw) == want


def test_raw_members_keep_text_and_let_the_last_duplicate_win() -> None:
    text = ' { "a" : [1, 2.50] , "b":"x" ,"a":{"k": null}}'
    assert raw_members(text, "doc") == {"a": '{"k": null}', "b": '"x"'}
    assert raw_members("{}", "doc") == {}
    with pytest.raises(InvalidInputError, match="doc: not a JSON object"):
        raw_members("[1]", "doc")
    with pytest.raises(InvalidInputError, match="doc: invalid JSON value NaN"):
        raw_members('{"a": NaN}', "doc")


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2016-08-18T06:13:28.269459769Z", "2016-08-18T06:13:28.269459769Z"),
        ("2016-08-18T06:13:28.100000000Z", "2016-08-18T06:13:28.1Z"),
        ("2016-08-18T06:13:28.000Z", "2016-08-18T06:13:28Z"),
        ("2016-08-18T06:13:28.1234567891234Z", "2016-08-18T06:13:28.123456789Z"),
        ("2016-08-18T06:13:28+00:00", "2016-08-18T06:13:28Z"),
        ("2016-08-18T06:13:28-00:00", "2016-08-18T06:13:28Z"),
        ("2016-08-18T06:13:28.5-07:30", "2016-08-18T06:13:28.5-07:30"),
        ("2016-02-29T00:00:00Z", "2016-02-29T00:00:00Z"),
        ("2000-02-29T23:59:59Z", "2000-02-29T23:59:59Z"),
    ],
)
def test_go_time(text: str, want: str) -> None:
    assert go_time(text, "t") == want


@pytest.mark.parametrize(
    "text",
    [
        "2015-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2016-13-01T00:00:00Z",
        "2016-04-31T00:00:00Z",
        "2016-01-01T24:00:00Z",
        "2016-01-01T00:60:00Z",
        "2016-01-01T00:00:60Z",
        "2016-01-01T00:00:00",
        "2016-01-01 00:00:00Z",
        "2016-01-01t00:00:00z",
        "2016-01-01T00:00:00.Z",
        "2016-01-01T00:00:00+24:00",
        "16-01-01T00:00:00Z",
    ],
)
def test_go_time_rejects(text: str) -> None:
    with pytest.raises(InvalidInputError, match=r"^t: "):
        go_time(text, "t")


@pytest.mark.parametrize(
    ("a", "b", "less"),
    [
        ("", "1.8.3", True),
        ("1.8.2", "1.8.3", True),
        ("1.8.3", "1.8.3", False),
        ("1.8", "1.8.3", True),
        ("1.10.0", "1.8.3", False),
        ("1.8.3-rc1", "1.8.3", True),  # "3-rc1" is not a number: 0
        ("1.8.4-dev", "1.8.3", True),
        ("1.8.3.1", "1.8.3", False),
        ("17.03.0-ce", "1.8.3", False),
        ("abc", "1.8.3", True),
    ],
)
def test_version_less(a: str, b: str, less: bool) -> None:
    assert _version_less(a, b) is less


INNER = (Field("N", Kind.INT, True), Field("L", Kind.STRS, True))
STRUCT = (
    Field("s", Kind.STR),
    Field("o", Kind.STR, True),
    Field("b", Kind.BOOL),
    Field("t", Kind.TIME),
    Field("slice", Kind.STR_SLICE),
    Field("set", Kind.SET),
    Field("map", Kind.STR_MAP),
    Field("in", Kind.STRUCT, True, INNER),
    Field("ptr", Kind.STRUCT_PTR, True, INNER),
    Field("ip", Kind.INT_PTR),
)


def _round_trip(obj: dict[str, Any]) -> str:
    pairs = encode_struct(decode_struct(obj, STRUCT, "x"), STRUCT)
    return "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"


def test_struct_zero_values() -> None:
    assert _round_trip({}) == (
        '{"s":"","b":false,"t":"0001-01-01T00:00:00Z","slice":null,"set":null,"map":null,'
        '"in":{},"ip":null}'
    )


def test_struct_round_trip() -> None:
    obj = {
        "S": "upper matches",
        "o": "kept",
        "b": True,
        "t": "2020-01-01T00:00:00.50Z",
        "slice": "one",
        "set": {"b": {}, "a": {"ignored": 1}, "c": None},
        "map": {"y": "2", "x": None},
        "in": {"n": 3, "L": ["a", None]},
        "ptr": {"N": 0},
        "ip": 0,
        "unknown": [1],
    }
    assert _round_trip(obj) == (
        '{"s":"upper matches","o":"kept","b":true,"t":"2020-01-01T00:00:00.5Z",'
        '"slice":["one"],"set":{"a":{},"b":{},"c":{}},"map":{"x":"","y":"2"},'
        '"in":{"N":3,"L":["a",""]},"ptr":{},"ip":0}'
    )


def test_struct_null_leaves_values_and_clears_pointers() -> None:
    nulls = {f.name: None for f in STRUCT}
    assert _round_trip(nulls) == _round_trip({})
    assert _round_trip({"slice": [], "set": {}, "map": {}}) == (
        '{"s":"","b":false,"t":"0001-01-01T00:00:00Z","slice":[],"set":{},"map":{},'
        '"in":{},"ip":null}'
    )


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"s": 1}, "x field 's': not a JSON string"),
        ({"b": 0}, "x field 'b': not a JSON boolean"),
        ({"slice": [1]}, "x field 'slice': not a JSON string"),
        ({"set": {"a": 1}}, "x field 'set': not a JSON object"),
        ({"in": {"N": True}}, "x field 'in' field 'N': not a JSON integer"),
        ({"ptr": "no"}, "x field 'ptr': not a JSON object"),
        ({"ip": 1e3}, "x field 'ip': not a JSON integer"),
    ],
)
def test_struct_type_errors(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=f"^{message}$"):
        decode_struct(obj, STRUCT, "x")
