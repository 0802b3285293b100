"""Just enough of Go's ``encoding/json`` and ``time`` to reproduce the bytes docker writes.

A config synthesised from a schema1 manifest is hashed into the image ID, so the bytes must be
the ones docker's Go code produces: strings escaped as Go escapes them (``<``, ``>``, ``&``,
U+2028 and U+2029 as ``\\u`` escapes), embedded raw JSON compacted as ``json.Compact`` does,
map keys sorted, struct fields in declaration order with ``omitempty`` honoured, and times
re-printed as RFC 3339 with nanoseconds. Decoding follows Go too: struct field names match
case-insensitively, ``null`` leaves a value field alone and clears a pointer, slice or map, and
a value of the wrong type is an error rather than a silent default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lorry.errors import InvalidInputError

__all__ = [
    "ZERO_TIME",
    "Field",
    "Kind",
    "compact",
    "decode_struct",
    "encode_struct",
    "go_string",
    "go_time",
    "loads",
    "raw_members",
]

#: How Go prints the zero ``time.Time``.
ZERO_TIME = "0001-01-01T00:00:00Z"

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_JSON_NAMES = {str: "string", bool: "boolean", int: "integer", dict: "object", list: "array"}
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile('["\\\\\x00-\x1f<>&\u2028\u2029\ud800-\udfff]')
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[ \t\n\r]+', re.DOTALL)
_IN_STRING = re.compile("[<>&\u2028\u2029]")
_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", re.ASCII
)


def _escape_char(match: re.Match[str]) -> str:
    c = match.group()
    if c in _ESCAPES:
        return _ESCAPES[c]
    if "\ud800" <= c <= "\udfff":
        return "\ufffd"  # Go decodes a lone surrogate escape to the replacement character
    return f"\\u{ord(c):04x}"


def go_string(text: str) -> str:
    """``text`` as a JSON string literal, escaped exactly as Go's ``json.Marshal`` does."""
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, text) + '"'


def _compact_token(match: re.Match[str]) -> str:
    token = match.group()
    if token[0] != '"':
        return ""
    return _IN_STRING.sub(lambda m: f"\\u{ord(m.group()):04x}", token)


def compact(raw: str) -> str:
    """Valid JSON text without insignificant whitespace, HTML-escaped (Go's ``compact``)."""
    return _TOKENS.sub(_compact_token, raw)


def _reject_constant(name: str) -> Any:
    raise InvalidInputError(f"invalid JSON value {name}")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def loads(text: str, what: str) -> Any:
    """Decode JSON as Go would accept it (no NaN or Infinity); errors name ``what``."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{what}: not JSON: {e.msg} at character {e.pos}") from None
    except InvalidInputError as e:
        raise InvalidInputError(f"{what}: {e}") from None


def _skip(text: str, pos: int) -> int:
    """The position of the first non-whitespace character at or after ``pos``."""
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def raw_members(text: str, what: str) -> dict[str, str]:
    """The members of a JSON object as raw value texts, later duplicates winning (Go maps)."""
    if not isinstance(loads(text, what), dict):
        raise InvalidInputError(f"{what}: not a JSON object")
    members: dict[str, str] = {}
    pos = _skip(text, _skip(text, 0) + 1)  # past the opening brace
    while text[pos] != "}":
        key, pos = _DECODER.raw_decode(text, pos)
        start = _skip(text, _skip(text, pos) + 1)  # past the colon
        _, pos = _DECODER.raw_decode(text, start)
        members[key] = text[start:pos]
        pos = _skip(text, pos)
        if text[pos] == ",":
            pos = _skip(text, pos + 1)
    return members


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in(year: int, month: int) -> int:
    if month == 2:
        return 29 if _leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def go_time(text: str, what: str) -> str:
    """Parse an RFC 3339 time as Go's ``time.Time`` does; print it back as Go's RFC3339Nano.

    Go keeps nanoseconds (further digits are dropped), trims trailing zeros of the fraction,
    and writes a zero offset as ``Z``.
    """
    m = _TIME.fullmatch(text)
    if m is None:
        raise InvalidInputError(f"{what}: {text!r} is not an RFC 3339 time")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7) or "", m.group(8)
    if not (1 <= month <= 12 and 1 <= day <= _days_in(year, month)):
        raise InvalidInputError(f"{what}: {text!r}: day out of range")
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidInputError(f"{what}: {text!r}: time out of range")
    if zone != "Z" and (int(zone[1:3]) > 23 or int(zone[4:6]) > 59):
        raise InvalidInputError(f"{what}: {text!r}: time zone offset out of range")
    nanos = frac[:9].ljust(9, "0").rstrip("0")
    if zone[1:] == "00:00":
        zone = "Z"
    return text[:19] + (f".{nanos}" if nanos else "") + zone


class Kind(Enum):
    """The Go types a docker struct field can have, as far as JSON is concerned."""

    STR = "string"
    BOOL = "bool"
    INT = "int64"
    INT_PTR = "*int"
    TIME = "time.Time"
    STRS = "[]string"
    STR_SLICE = "strslice.StrSlice"  # a list of strings, or one string
    SET = "map[string]struct{}"
    STR_MAP = "map[string]string"
    STRUCT = "struct"
    STRUCT_PTR = "*struct"


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a Go struct: its JSON name, kind, ``omitempty``, and nested fields."""

    name: str
    kind: Kind
    omitempty: bool = False
    fields: tuple[Field, ...] = ()


def _zero(f: Field) -> Any:
    match f.kind:
        case Kind.STR:
            return ""
        case Kind.BOOL:
            return False
        case Kind.INT:
            return 0
        case Kind.TIME:
            return ZERO_TIME
        case Kind.STRUCT:
            return decode_struct({}, f.fields, "")
        case _:
            return None  # nil pointer, slice or map


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list):
        raise InvalidInputError(f"{what}: not a list of strings")
    return ["" if v is None else _typed(v, str, what) for v in value]


def _typed(value: Any, kind: type, what: str) -> Any:
    """``value`` if it has the JSON type ``kind`` (an int being a Go int64), else an error."""
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidInputError(f"{what}: not a JSON {_JSON_NAMES[kind]}")
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:
        raise InvalidInputError(f"{what}: {value} overflows int64")
    return value


def _decode(f: Field, value: Any, what: str) -> Any:
    """One field's value from JSON; ``value`` is not null."""
    match f.kind:
        case Kind.STR:
            return _typed(value, str, what)
        case Kind.BOOL:
            return _typed(value, bool, what)
        case Kind.INT | Kind.INT_PTR:
            return _typed(value, int, what)
        case Kind.TIME:
            return go_time(_typed(value, str, what), what)
        case Kind.STRS:
            return _strings(value, what)
        case Kind.STR_SLICE:
            return [value] if isinstance(value, str) else _strings(value, what)
        case Kind.SET:
            for v in _typed(value, dict, what).values():
                if v is not None:
                    _typed(v, dict, what)
            return sorted(value)
        case Kind.STR_MAP:
            items = _typed(value, dict, what).items()
            return {k: "" if v is None else _typed(v, str, what) for k, v in items}
        case _:
            return decode_struct(_typed(value, dict, what), f.fields, what)


def decode_struct(obj: Mapping[str, Any], fields: Sequence[Field], what: str) -> dict[str, Any]:
    """Decode a JSON object into a struct (dict by field name) as ``json.Unmarshal`` does."""
    out = {f.name: _zero(f) for f in fields}
    exact = {f.name: f for f in fields}
    folded = {f.name.lower(): f for f in fields}
    for key, value in obj.items():
        f = exact.get(key) or folded.get(key.lower())
        if f is None:
            continue
        if value is not None:
            out[f.name] = _decode(f, value, f"{what} field {f.name!r}")
        elif f.kind not in (Kind.STR, Kind.BOOL, Kind.INT, Kind.TIME, Kind.STRUCT):
            out[f.name] = None
    return out


def _empty(value: Any) -> bool:
    return value is None or value in (0, "", [], {})


def _encode(f: Field, value: Any) -> str:
    if value is None:
        return "null"
    match f.kind:
        case Kind.STR | Kind.TIME:
            return go_string(value)
        case Kind.BOOL:
            return "true" if value else "false"
        case Kind.INT | Kind.INT_PTR:
            return str(value)
        case Kind.STRS | Kind.STR_SLICE:
            return "[" + ",".join(go_string(v) for v in value) + "]"
        case Kind.SET:
            return "{" + ",".join(f"{go_string(k)}:{{}}" for k in value) + "}"
        case Kind.STR_MAP:
            pairs = sorted(value.items())
            return "{" + ",".join(f"{go_string(k)}:{go_string(v)}" for k, v in pairs) + "}"
        case _:
            return "{" + ",".join(f"{k}:{v}" for k, v in encode_struct(value, f.fields)) + "}"


def encode_struct(values: Mapping[str, Any], fields: Sequence[Field]) -> list[tuple[str, str]]:
    """A decoded struct as ``(escaped key, JSON value)`` pairs in field order, as Go marshals.

    ``omitempty`` never drops a struct value (Go's rule), only empty strings, false, zero,
    nil and empty slices and maps.
    """
    pairs = []
    for f in fields:
        value = values[f.name]
        if f.omitempty and f.kind is not Kind.STRUCT and _empty(value):
            continue
        pairs.append((go_string(f.name), _encode(f, value)))
    return pairs
