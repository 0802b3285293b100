"""Tests of lorry.oci.descriptor: reading, validating and writing descriptors."""

from __future__ import annotations

from typing import Any

import pytest

from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import Descriptor
from lorry.platform import Platform

D = "sha256:" + "ab" * 32


def _full() -> dict[str, Any]:
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": D,
        "size": 7143,
        "urls": ["https://example.com/blob"],
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
        "artifactType": "application/vnd.example+json",
    }


def test_full_descriptor_round_trips_in_oci_order() -> None:
    d = Descriptor.from_dict(_full())
    assert d.digest == Digest.parse(D)
    assert d.size == 7143
    assert d.urls == ("https://example.com/blob",)
    assert d.platform == Platform("linux", "arm64", "v8")
    assert d.to_dict() == _full()
    assert list(d.to_dict()) == ["mediaType", "digest", "size", "urls", "annotations",
                                 "platform", "artifactType"]  # fmt: skip


def test_docker_order_and_fields() -> None:
    d = Descriptor.from_dict(_full())
    out = d.to_dict(docker=True)
    assert list(out) == ["mediaType", "size", "digest", "urls", "annotations", "platform"]


def test_embedded_data_is_decoded_and_checked() -> None:
    empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    d = Descriptor.from_dict(
        {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "digest": empty,
            "size": 2,
            "data": "e30=",
        }
    )
    assert d.data == b"{}"
    assert d.to_dict()["data"] == "e30="
    with pytest.raises(InvalidInputError, match="embedded data does not match"):
        Descriptor.from_dict({"mediaType": "a/b", "digest": empty, "size": 2, "data": "eHg="})
    with pytest.raises(InvalidInputError, match="'data' is not base64"):
        Descriptor.from_dict({"mediaType": "a/b", "digest": empty, "size": 2, "data": "!!"})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mediaType": None}, "missing required field 'mediaType'"),
        ({"mediaType": "not a media type"}, "malformed media type"),
        ({"mediaType": 5}, "'mediaType' is not a string"),
        ({"digest": None}, "missing required field 'digest'"),
        ({"digest": "sha256:abc"}, "field 'digest': invalid sha256 digest"),
        ({"digest": "md5:" + "0" * 32}, "unsupported digest algorithm"),
        ({"digest": "ab" * 32}, "missing algorithm prefix"),
        ({"size": -1}, "negative size -1"),
        ({"size": True}, "'size' is not an integer"),
        ({"size": 1.5}, "'size' is not an integer"),
        ({"size": "12"}, "'size' is not an integer"),
        ({"size": None}, "missing required field 'size'"),
        ({"urls": "https://x"}, "'urls' is not a list"),
        ({"urls": [1]}, "'urls' is not a list of strings"),
        ({"annotations": {"a": 1}}, "'annotations' has a value that is not a string"),
        ({"annotations": ["a"]}, "'annotations' is not a JSON object"),
        ({"platform": {"os": "linux"}}, r"layers\[3\].platform: missing required field"),
        ({"artifactType": "nope"}, "artifactType: malformed media type"),
    ],
)
def test_rejects_each_bad_field_naming_it(change: dict[str, Any], message: str) -> None:
    d = _full()
    for key, value in change.items():
        if value is None:
            del d[key]
        else:
            d[key] = value
    with pytest.raises(InvalidInputError, match=message) as info:
        Descriptor.from_dict(d, "manifest layers[3]")
    assert str(info.value).startswith("manifest layers[3]")


def test_not_an_object() -> None:
    with pytest.raises(InvalidInputError, match="config: not a JSON object"):
        Descriptor.from_dict(["x"], "config")


def test_constructor_checks_size_and_media_type() -> None:
    with pytest.raises(InvalidInputError, match="negative size"):
        Descriptor("a/b", Digest.parse(D), -5)
    with pytest.raises(InvalidInputError, match="malformed media type"):
        Descriptor("ab", Digest.parse(D), 5)


def test_hashable_and_comparable() -> None:
    a = Descriptor.from_dict(_full())
    b = Descriptor.from_dict(_full())
    assert a == b
    assert len({a, b}) == 1
