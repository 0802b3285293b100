"""Schema1 manifests to image configs: what docker synthesised when it pulled a schema1 image.

A schema1 manifest has no config blob. Each layer carries a ``v1Compatibility`` JSON string
(the old v1 image JSON), top layer first. Docker (``distribution/pull_v2.go`` ``pullSchema1``
with ``image/v1``; xfer-spec §4.3) pulls one blob per non-throwaway entry, bottom to top, then
builds the config from the **top** entry: it drops the v1-only keys, adds ``rootfs`` with the
DiffIDs it downloaded, and ``history`` made from every entry. The config's digest is the image
ID, so this module reproduces docker's bytes (see :mod:`lorry.oci._gojson`):

* Top-level keys are sorted (docker marshals a Go map); each value is the entry's own JSON text,
  compacted and HTML-escaped, so nested key order is whatever the manifest had.
* ``rootfs`` is ``{"type":"layers","diff_ids":[…]}``; each ``history`` item is ``created``,
  ``author``, ``created_by`` (``container_config.Cmd`` joined with spaces), ``comment``,
  ``empty_layer`` in that order, the last four left out when empty.
* Entries written by Docker older than 1.8.3 (or with no ``docker_version``) are first passed
  through the v1 image struct, as docker does, which drops unknown keys and fills the defaults.

The struct shapes are those of Docker 20.10 (``image.V1Image``, ``container.Config``,
``image.History`` with a non-pointer ``created``), the last long-lived release that pulled
schema1 by default. One deliberate difference: an image whose every layer is throwaway gets
``"diff_ids":[]`` where Go would omit the key, because a config without it is not valid.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import DiffID, Digest
from lorry.errors import InvalidInputError
from lorry.oci._gojson import (
    Field,
    Kind,
    compact,
    decode_struct,
    encode_struct,
    go_string,
    loads,
    raw_members,
)
from lorry.oci.schema1 import Schema1Manifest

__all__ = ["Schema1Layer", "config_from_schema1", "layers_to_fetch"]

#: Keys of the top v1 JSON that describe the v1 layer, not the image (moby's list).
_V1_ONLY_KEYS = ("id", "parent", "Size", "parent_id", "layer_id", "throwaway")

#: Below this ``docker_version`` docker normalises the v1 JSON through its struct first.
_NO_FALLBACK_MIN_VERSION = "1.8.3"

_S, _B, _I = Kind.STR, Kind.BOOL, Kind.INT
_HEALTH = (
    Field("Test", Kind.STRS, True),
    *(Field(name, _I, True) for name in ("Interval", "Timeout", "StartPeriod", "Retries")),
)
_CONFIG = (
    *(Field(name, _S) for name in ("Hostname", "Domainname", "User")),
    *(Field(name, _B) for name in ("AttachStdin", "AttachStdout", "AttachStderr")),
    Field("ExposedPorts", Kind.SET, True),
    *(Field(name, _B) for name in ("Tty", "OpenStdin", "StdinOnce")),
    Field("Env", Kind.STRS),
    Field("Cmd", Kind.STR_SLICE),
    Field("Healthcheck", Kind.STRUCT_PTR, True, _HEALTH),
    Field("ArgsEscaped", _B, True),
    Field("Image", _S),
    Field("Volumes", Kind.SET),
    Field("WorkingDir", _S),
    Field("Entrypoint", Kind.STR_SLICE),
    Field("NetworkDisabled", _B, True),
    Field("MacAddress", _S, True),
    Field("OnBuild", Kind.STRS),
    Field("Labels", Kind.STR_MAP),
    Field("StopSignal", _S, True),
    Field("StopTimeout", Kind.INT_PTR, True),
    Field("Shell", Kind.STR_SLICE, True),
)
_V1_IMAGE = (
    *(Field(name, _S, True) for name in ("id", "parent", "comment")),
    Field("created", Kind.TIME),
    Field("container", _S, True),
    Field("container_config", Kind.STRUCT, True, _CONFIG),
    Field("docker_version", _S, True),
    Field("author", _S, True),
    Field("config", Kind.STRUCT_PTR, True, _CONFIG),
    *(Field(name, _S, True) for name in ("architecture", "variant", "os")),
    Field("Size", _I, True),
)
_THROWAWAY = (Field("throwaway", _B, True),)
_DOCKER_VERSION = (Field("docker_version", _S),)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Schema1Layer:
    """One layer blob to download for a schema1 image; schema1 never says how big it is."""

    digest: Digest
    media_type: str = mt.DOCKER_LAYER_GZIP
    size: int | None = None


@dataclass(frozen=True, slots=True)
class _Entry:
    """One history entry after ``fix_layers``: its blob, v1 JSON and converted history item."""

    blob: Digest
    v1_json: str
    throwaway: bool
    history: str


def layers_to_fetch(manifest: Schema1Manifest) -> list[Schema1Layer]:
    """The blobs to pull, bottom to top, without throwaway entries or repeated adjacent layers.

    Raises :class:`InvalidInputError` when the parent chain is broken (see ``fix_layers``).
    """
    return [Schema1Layer(e.blob) for e in _entries(manifest) if not e.throwaway]


def config_from_schema1(manifest: Schema1Manifest, diff_ids: Sequence[DiffID]) -> bytes:
    """The image config docker builds for ``manifest``, given the pulled layers' DiffIDs.

    ``diff_ids`` are bottom to top, one per layer of :func:`layers_to_fetch`; a different count
    is an :class:`InvalidInputError`, as is a broken parent chain or a malformed v1 JSON.
    """
    entries = _entries(manifest)
    layers = sum(1 for e in entries if not e.throwaway)
    if len(diff_ids) != layers:
        raise InvalidInputError(
            f"schema1 manifest {manifest.digest}: {len(diff_ids)} DiffIDs given for {layers} layers"
        )
    top = entries[-1].v1_json
    members = raw_members(_normalised(top, _what(0)), _what(0))
    for key in _V1_ONLY_KEYS:
        members.pop(key, None)
    layer_list = ",".join(go_string(str(d)) for d in diff_ids)
    members["rootfs"] = f'{{"type":"layers","diff_ids":[{layer_list}]}}'
    members["history"] = "[" + ",".join(e.history for e in entries) + "]"
    body = ",".join(f"{go_string(k)}:{compact(v)}" for k, v in sorted(members.items()))
    return ("{" + body + "}").encode("utf-8")


def _what(index: int) -> str:
    return f"schema1 manifest history[{index}].v1Compatibility"


def _entries(manifest: Schema1Manifest) -> list[_Entry]:
    """Every entry of the fixed manifest, bottom to top, with its history item."""
    fixed = manifest.fix_layers()
    out = []
    for index in range(len(fixed.history) - 1, -1, -1):
        what = _what(index)
        text = _LONE_SURROGATE.sub("\ufffd", fixed.history[index])
        obj = loads(text, what)
        if not isinstance(obj, dict):
            raise InvalidInputError(f"{what}: not a JSON object")
        throwaway = bool(decode_struct(obj, _THROWAWAY, what)["throwaway"])
        image = decode_struct(obj, _V1_IMAGE, what)
        out.append(_Entry(fixed.fs_layers[index], text, throwaway, _history(image, throwaway)))
    return out


def _history(image: dict[str, Any], throwaway: bool) -> str:
    """One ``history`` item as docker's ``HistoryFromConfig`` writes it."""
    items = [f'"created":{go_string(image["created"])}']
    cmd = image["container_config"]["Cmd"]
    for key, value in (
        ("author", image["author"]),
        ("created_by", " ".join(cmd or ())),
        ("comment", image["comment"]),
    ):
        if value:
            items.append(f'"{key}":{go_string(value)}')
    if throwaway:
        items.append('"empty_layer":true')
    return "{" + ",".join(items) + "}"


def _normalised(v1_json: str, what: str) -> str:
    """The top v1 JSON, first passed through the v1 image struct when Docker < 1.8.3 wrote it."""
    obj = loads(v1_json, what)
    version = decode_struct(obj, _DOCKER_VERSION, what)["docker_version"]
    if not _version_less(version, _NO_FALLBACK_MIN_VERSION):
        return v1_json
    pairs = encode_struct(decode_struct(obj, _V1_IMAGE, what), _V1_IMAGE)
    return "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"


def _atoi(text: str) -> int:
    """Go's ``strconv.Atoi`` as moby's version compare uses it: 0 when not a number."""
    if not re.fullmatch(r"[+-]?[0-9]+", text, re.ASCII):
        return 0
    return max(-(2**63), min(2**63 - 1, int(text)))


def _version_less(v1: str, v2: str) -> bool:
    """moby ``versions.LessThan``: dotted parts compared as integers, missing parts are 0."""
    a, b = v1.split("."), v2.split(".")
    for i in range(max(len(a), len(b))):
        x = _atoi(a[i]) if i < len(a) else 0
        y = _atoi(b[i]) if i < len(b) else 0
        if x != y:
            return x < y
    return False
