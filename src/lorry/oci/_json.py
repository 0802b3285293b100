"""Strict JSON field access for image documents: every error names the field that is wrong.

Go's ``encoding/json`` (which wrote nearly every manifest in the wild) is the model: numbers are
integers where the spec says so, ``true`` is not ``1``, and a field of the wrong type is an
error rather than a silent default. Serialising is compact, UTF-8, in the insertion order the
caller chose (the spec's struct order), so a document lorry creates is byte-for-byte stable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from lorry.digest import Digest
from lorry.errors import InvalidInputError

#: Largest manifest or index lorry reads or writes (containerd's ``MaxManifestSize``).
MAX_MANIFEST_SIZE = 4 * 1024 * 1024


def parse_json(raw: bytes | str) -> Any:
    """``json.loads``, where nesting too deep to decode is a ValueError like any bad JSON.

    Every JSON document lorry reads from outside goes through here: a hostile reply nested
    100,000 deep must end in one error line, not a RecursionError traceback.
    """
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def load_object(raw: bytes, what: str, max_size: int) -> dict[str, Any]:
    """Decode ``raw`` as one JSON object of at most ``max_size`` bytes."""
    if len(raw) > max_size:
        raise InvalidInputError(f"{what}: {len(raw)} bytes is over the {max_size}-byte limit")
    try:
        obj = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise InvalidInputError(f"{what}: not UTF-8 JSON: {e.reason} at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise InvalidInputError(f"{what}: not JSON: {e.msg} at byte {e.pos}") from None
    except ValueError as e:
        raise InvalidInputError(f"{what}: not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{what}: not a JSON object")
    return obj


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON in the given key order: lorry's one canonical serialisation."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def req_str(d: Mapping[str, Any], key: str, what: str) -> str:
    """A required string field."""
    if key not in d:
        raise InvalidInputError(f"{what}: missing required field {key!r}")
    return _str(d[key], key, what)


def opt_str(d: Mapping[str, Any], key: str, what: str) -> str | None:
    """An optional string field; ``None`` when absent or null."""
    value = d.get(key)
    return None if value is None else _str(value, key, what)


def _str(value: Any, key: str, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what}: field {key!r} is not a string")
    return value


def req_int(d: Mapping[str, Any], key: str, what: str) -> int:
    """A required integer field (JSON booleans and fractions are refused)."""
    if key not in d:
        raise InvalidInputError(f"{what}: missing required field {key!r}")
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{what}: field {key!r} is not an integer")
    return value


def opt_list(d: Mapping[str, Any], key: str, what: str, required: bool = False) -> list[Any]:
    """A list field; empty when absent (or an error when ``required``)."""
    value = d.get(key)
    if value is None:
        if required:
            raise InvalidInputError(f"{what}: missing required field {key!r}")
        return []
    if not isinstance(value, list):
        raise InvalidInputError(f"{what}: field {key!r} is not a list")
    return value


def opt_object(d: Mapping[str, Any], key: str, what: str) -> dict[str, Any] | None:
    """An optional JSON-object field."""
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what}: field {key!r} is not a JSON object")
    return value


def str_list(d: Mapping[str, Any], key: str, what: str) -> tuple[str, ...]:
    """An optional list of strings."""
    values = opt_list(d, key, what)
    if not all(isinstance(v, str) for v in values):
        raise InvalidInputError(f"{what}: field {key!r} is not a list of strings")
    return tuple(values)


def str_map(d: Mapping[str, Any], what: str) -> dict[str, str]:
    """The ``annotations`` string map; empty when absent."""
    value = opt_object(d, "annotations", what) or {}
    if not all(isinstance(v, str) for v in value.values()):
        raise InvalidInputError(f"{what}: field 'annotations' has a value that is not a string")
    return dict(value)


def digest_field(d: Mapping[str, Any], key: str, what: str) -> Digest:
    """A required digest field, validated."""
    text = req_str(d, key, what)
    try:
        return Digest.parse(text)
    except InvalidInputError as e:
        raise InvalidInputError(f"{what}: field {key!r}: {e}") from None
