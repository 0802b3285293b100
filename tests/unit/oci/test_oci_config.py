"""Tests of lorry.oci.config: image configs, their DiffIDs and history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import MAX_CONFIG_SIZE, ImageConfig
from lorry.platform import Platform


def test_docker_config(fixture_bytes: dict[str, bytes]) -> None:
    raw = fixture_bytes["config_docker"]
    c = ImageConfig.parse(raw, mt.DOCKER_CONFIG)
    assert c.id == c.digest == Digest.of(raw)
    assert c.platform == Platform("linux", "amd64")
    assert c.created == "2024-01-27T00:30:56.150825642Z"
    assert c.config["Cmd"] == ["/bin/sh"]
    assert c.data["docker_version"] == "20.10.23"
    assert len(c.diff_ids) == 1 and len(c.history) == 2
    assert [h.empty_layer for h in c.history] == [False, True]
    assert len(c.layer_history()) == len(c.diff_ids)
    assert c.media_type == mt.DOCKER_CONFIG


def test_oci_config(fixture_bytes: dict[str, bytes]) -> None:
    c = ImageConfig.parse(fixture_bytes["config_oci"])
    assert str(c.platform) == "linux/arm64/v8"
    assert c.author == "lorry tests"
    assert c.history[0].comment == "debuerreotype 0.15"
    assert len(c.layer_history()) == len(c.diff_ids) == 2


def _mutated(fixture_bytes: dict[str, bytes], **changes: Any) -> bytes:
    doc = json.loads(fixture_bytes["config_oci"])
    for key, value in changes.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rootfs": None}, "invalid rootfs in image configuration"),
        ({"rootfs": {"type": "layer", "diff_ids": []}}, "invalid rootfs in image configuration"),
        ({"rootfs": {"type": "layers"}}, "rootfs: missing required field 'diff_ids'"),
        ({"rootfs": {"type": "layers", "diff_ids": ["sha256:1"]}}, r"rootfs.diff_ids\[0\]"),
        ({"rootfs": {"type": "layers", "diff_ids": [7]}}, r"rootfs.diff_ids\[0\]: field"),
        ({"architecture": None}, "missing required field 'architecture'"),
        ({"os": 3}, "field 'os' is not a string"),
        ({"history": [{"empty_layer": "yes"}]}, r"history\[0\]: field 'empty_layer'"),
        ({"history": ["x"]}, r"history\[0\]: not a JSON object"),
        ({"config": []}, "field 'config' is not a JSON object"),
    ],
)
def test_rejects(fixture_bytes: dict[str, bytes], changes: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        ImageConfig.parse(_mutated(fixture_bytes, **changes))


def test_size_limit() -> None:
    body = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    raw = json.dumps(body).encode()
    padded = raw[:-1] + b" " * (MAX_CONFIG_SIZE - len(raw)) + b"}"
    assert len(ImageConfig.parse(padded).raw) == MAX_CONFIG_SIZE
    with pytest.raises(InvalidInputError, match="over the"):
        ImageConfig.parse(padded + b" ")
    with pytest.raises(InvalidInputError, match="over the 100-byte limit"):
        ImageConfig.parse(raw + b" " * 100, max_size=100)


def test_not_json() -> None:
    with pytest.raises(InvalidInputError, match="image config: not JSON"):
        ImageConfig.parse(b"{")
