"""Tests of lorry.oci.index: OCI indexes and Docker manifest lists, and platform selection."""

from __future__ import annotations

import json

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError, NotFoundError
from lorry.oci import Descriptor, Index
from lorry.platform import Platform


def _p(text: str) -> Platform:
    return Platform.parse(text)


def test_oci_index_fields(fixture_bytes: dict[str, bytes]) -> None:
    raw = fixture_bytes["index_oci"]
    idx = Index.parse(raw, mt.OCI_INDEX)
    assert idx.media_type == mt.OCI_INDEX
    assert idx.digest == Digest.of(raw) and idx.raw is raw
    assert len(idx.manifests) == 5
    assert idx.annotations == {"org.opencontainers.image.ref.name": "latest"}
    assert idx.manifests[3].platform == Platform("windows", "amd64", os_version="10.0.20348.2113")


@pytest.mark.parametrize(
    ("wanted", "entry"),
    [
        ("linux/amd64", 0),
        ("linux/arm64", 1),
        ("linux/arm64/v8", 1),
        ("linux/arm/v7", 2),
        ("linux/arm/v8", 2),
        ("linux/amd64/v3", 0),
    ],
)
def test_oci_index_select(fixture_bytes: dict[str, bytes], wanted: str, entry: int) -> None:
    idx = Index.parse(fixture_bytes["index_oci"])
    assert idx.select(_p(wanted)) == idx.manifests[entry]


def test_manifest_for_arm64_is_the_oci_fixture(fixture_bytes: dict[str, bytes]) -> None:
    idx = Index.parse(fixture_bytes["index_oci"])
    assert idx.select(_p("linux/arm64")).digest == Digest.of(fixture_bytes["manifest_oci"])


def test_attestations_are_never_selected(fixture_bytes: dict[str, bytes]) -> None:
    idx = Index.parse(fixture_bytes["index_oci"])
    for wanted in ("linux/amd64", "linux/arm64", "linux/arm/v7", "windows/amd64"):
        assert idx.manifests[4] not in idx.matching(_p(wanted))


def test_windows_entries_match_by_build(fixture_bytes: dict[str, bytes]) -> None:
    idx = Index.parse(fixture_bytes["index_oci"])
    host = Platform("windows", "amd64", os_version="10.0.22621.1")
    assert idx.select(host) == idx.manifests[3]
    with pytest.raises(NotFoundError):
        idx.select(Platform("windows", "amd64", os_version="10.0.17763.1"))


def test_not_found_message_names_the_platform(fixture_bytes: dict[str, bytes]) -> None:
    idx = Index.parse(fixture_bytes["index_oci"])
    with pytest.raises(NotFoundError) as info:
        idx.select(_p("linux/s390x"))
    assert str(info.value) == "no matching manifest for linux/s390x in the manifest list entries"
    with pytest.raises(NotFoundError) as info:
        idx.select(_p("linux/arm/v6"))
    assert str(info.value) == "no matching manifest for linux/arm/v6 in the manifest list entries"


def test_docker_list_compatible_and_strict(fixture_bytes: dict[str, bytes]) -> None:
    lst = Index.parse(fixture_bytes["list_docker"])
    assert lst.media_type == mt.DOCKER_MANIFEST_LIST
    by_platform = {str(d.platform): d for d in lst.manifests}
    assert lst.select(_p("linux/arm64")) == by_platform["linux/arm64/v8"]
    assert lst.select(_p("linux/arm/v7")) == by_platform["linux/arm/v7"]
    assert lst.select(_p("linux/386")) == by_platform["linux/386"]
    order = [str(d.platform) for d in lst.matching(_p("linux/arm/v7"))]
    assert order == ["linux/arm/v7", "linux/arm/v6"]


def test_compatible_fallbacks_when_the_exact_entry_is_missing(
    fixture_bytes: dict[str, bytes],
) -> None:
    doc = json.loads(fixture_bytes["list_docker"])
    doc["manifests"] = [m for m in doc["manifests"] if m["platform"]["architecture"] != "amd64"]
    doc["manifests"] = [m for m in doc["manifests"] if m["platform"]["architecture"] != "arm64"]
    lst = Index.parse(json.dumps(doc).encode())
    assert str(lst.select(_p("linux/amd64")).platform) == "linux/386"
    assert str(lst.select(_p("linux/arm64")).platform) == "linux/arm/v7"
    with pytest.raises(NotFoundError, match="no matching manifest for linux/amd64 in"):
        lst.select(_p("linux/amd64"), strict=True)
    with pytest.raises(NotFoundError, match="no matching manifest for linux/arm64 in"):
        lst.select(_p("linux/arm64"), strict=True)


def _d(media_type: str, name: bytes, platform: Platform | None = None) -> Descriptor:
    return Descriptor(media_type, Digest.of(name), len(name), platform=platform)


def test_unplatformed_entries_fit_last_and_unknown_types_are_skipped() -> None:
    amd64 = _d(mt.OCI_MANIFEST, b"a", Platform("linux", "amd64"))
    bare = _d(mt.OCI_MANIFEST, b"b")
    odd = _d("application/vnd.example.thing", b"c", Platform("linux", "amd64"))
    idx = Index.build(mt.OCI_INDEX, [bare, odd, amd64])
    assert idx.matching(_p("linux/amd64")) == [amd64, bare]
    assert idx.select(_p("linux/arm64")) == bare


def test_build_docker_list_order_and_round_trip() -> None:
    entry = _d(mt.DOCKER_MANIFEST_V2, b"m", Platform("linux", "arm", "v7"))
    lst = Index.build(mt.DOCKER_MANIFEST_LIST, [entry])
    doc = json.loads(lst.raw)
    assert list(doc) == ["schemaVersion", "mediaType", "manifests"]
    assert list(doc["manifests"][0]) == ["mediaType", "size", "digest", "platform"]
    assert Index.parse(lst.raw, mt.DOCKER_MANIFEST_LIST) == lst
    assert lst.descriptor().size == len(lst.raw)
    with pytest.raises(InvalidInputError, match="Docker manifest list has no annotations"):
        Index.build(mt.DOCKER_MANIFEST_LIST, [entry], {"a": "b"})
    with pytest.raises(InvalidInputError, match="cannot build an index of type"):
        Index.build(mt.OCI_MANIFEST, [entry])


def test_build_oci_index_with_subject_and_annotations() -> None:
    subject = _d(mt.OCI_MANIFEST, b"s")
    idx = Index.build(mt.OCI_INDEX, [_d(mt.OCI_MANIFEST, b"m")], {"k": "v"}, subject=subject,
                      artifact_type="application/vnd.example+json")  # fmt: skip
    assert list(json.loads(idx.raw)) == ["schemaVersion", "mediaType", "artifactType",
                                         "manifests", "subject", "annotations"]  # fmt: skip
    assert Index.parse(idx.raw) == idx
    assert idx.matches_digest(Digest.of(idx.raw, "sha512"))


def test_bad_entries_are_named(fixture_bytes: dict[str, bytes]) -> None:
    doc = json.loads(fixture_bytes["index_oci"])
    doc["manifests"][2]["platform"] = {"os": "linux"}
    with pytest.raises(InvalidInputError, match=r"index manifests\[2\].platform: missing"):
        Index.parse(json.dumps(doc).encode())
    del doc["manifests"]
    with pytest.raises(InvalidInputError):
        Index.parse(json.dumps(doc).encode())


def test_parse_refuses_a_manifest(fixture_bytes: dict[str, bytes]) -> None:
    with pytest.raises(InvalidInputError, match="expected an index"):
        Index.parse(fixture_bytes["manifest_oci"])
