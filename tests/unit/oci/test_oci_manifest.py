"""Tests of lorry.oci.manifest: Docker schema2 and OCI manifests, parsed and built."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import Descriptor, Manifest
from lorry.platform import Platform


def _sha(data: bytes) -> Digest:
    return Digest("sha256", hashlib.sha256(data).hexdigest())


def test_docker_v2(fixture_bytes: dict[str, bytes]) -> None:
    raw = fixture_bytes["manifest_docker_v2"]
    m = Manifest.parse(raw, "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8")
    assert m.media_type == mt.DOCKER_MANIFEST_V2
    assert m.raw is raw
    assert m.digest == _sha(raw)
    config = fixture_bytes["config_docker"]
    assert (m.config.digest, m.config.size) == (_sha(config), len(config))
    assert m.config.media_type == mt.DOCKER_CONFIG
    assert [layer.size for layer in m.layers] == [3408729]
    assert m.subject is None and m.artifact_type is None and dict(m.annotations) == {}


def test_oci(fixture_bytes: dict[str, bytes]) -> None:
    m = Manifest.parse(fixture_bytes["manifest_oci"])
    assert m.media_type == mt.OCI_MANIFEST
    assert [layer.media_type for layer in m.layers] == [mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD]
    assert m.layers[1].annotations == {"io.containerd.image.layer.title": "app"}
    assert m.annotations["org.opencontainers.image.base.name"].endswith("debian:bookworm")


def test_oci_artifact_with_subject(fixture_bytes: dict[str, bytes]) -> None:
    m = Manifest.parse(fixture_bytes["manifest_oci_artifact"], mt.OCI_MANIFEST)
    assert m.artifact_type == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert m.config.media_type == mt.OCI_EMPTY and m.config.data == b"{}"
    assert m.subject is not None
    assert m.subject.digest == _sha(fixture_bytes["manifest_oci"])


def test_parse_refuses_an_index(fixture_bytes: dict[str, bytes]) -> None:
    with pytest.raises(InvalidInputError, match="expected an image manifest, got"):
        Manifest.parse(fixture_bytes["index_oci"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"config": None}, "missing required field 'config'"),
        ({"layers": None}, "missing required field 'layers'"),
        ({"layers": {}}, "field 'layers' is not a list"),
        ({"artifactType": "bad"}, "manifest.artifactType: malformed media type"),
        ({"subject": "sha256:x"}, "field 'subject' is not a JSON object"),
        ({"annotations": {"k": None}}, "'annotations' has a value that is not a string"),
    ],
)
def test_bad_fields(fixture_bytes: dict[str, bytes], body: dict[str, object], message: str) -> None:
    doc = json.loads(fixture_bytes["manifest_oci"])
    for key, value in body.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    with pytest.raises(InvalidInputError, match=message):
        Manifest.parse(json.dumps(doc).encode())


def test_bad_layer_digest_names_the_layer(fixture_bytes: dict[str, bytes]) -> None:
    doc = json.loads(fixture_bytes["manifest_oci"])
    doc["layers"][1]["digest"] = "sha256:ABC"
    with pytest.raises(InvalidInputError, match=r"manifest layers\[1\]: field 'digest'"):
        Manifest.parse(json.dumps(doc).encode())


CONFIG = Descriptor(mt.DOCKER_CONFIG, Digest.of(b"config"), 6)
LAYER = Descriptor(mt.DOCKER_LAYER_GZIP, Digest.of(b"layer"), 5)


def test_build_docker_is_compact_in_struct_order() -> None:
    m = Manifest.build(mt.DOCKER_MANIFEST_V2, CONFIG, [LAYER])
    want = (
        '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",'
        f'"config":{{"mediaType":"{mt.DOCKER_CONFIG}","size":6,"digest":"{CONFIG.digest}"}},'
        f'"layers":[{{"mediaType":"{mt.DOCKER_LAYER_GZIP}","size":5,"digest":"{LAYER.digest}"}}]}}'
    )
    assert m.raw == want.encode()
    assert m.digest == _sha(m.raw)
    assert Manifest.parse(m.raw, mt.DOCKER_MANIFEST_V2) == m


def test_build_oci_with_everything() -> None:
    subject = Descriptor(mt.OCI_MANIFEST, Digest.of(b"subject"), 100)
    m = Manifest.build(
        mt.OCI_MANIFEST,
        Descriptor(mt.OCI_CONFIG, Digest.of(b"c"), 1),
        [Descriptor(mt.OCI_LAYER_ZSTD, Digest.of(b"l"), 1)],
        {"org.opencontainers.image.title": "x"},
        subject=subject,
        artifact_type="application/vnd.example+json",
    )
    assert list(json.loads(m.raw)) == ["schemaVersion", "mediaType", "artifactType", "config",
                                       "layers", "subject", "annotations"]  # fmt: skip
    assert m.subject == subject
    assert Manifest.parse(m.raw) == m
    d = m.descriptor(Platform("linux", "amd64"))
    assert (d.digest, d.size, d.media_type) == (m.digest, len(m.raw), mt.OCI_MANIFEST)
    assert d.artifact_type == "application/vnd.example+json"


def test_build_refuses_what_docker_cannot_say() -> None:
    with pytest.raises(InvalidInputError, match="Docker schema2 manifest has no annotations"):
        Manifest.build(mt.DOCKER_MANIFEST_V2, CONFIG, [LAYER], {"a": "b"})
    with pytest.raises(InvalidInputError, match="cannot build a manifest of type"):
        Manifest.build(mt.OCI_INDEX, CONFIG, [LAYER])


def test_matches_digest_in_any_algorithm(fixture_bytes: dict[str, bytes]) -> None:
    raw = fixture_bytes["manifest_oci"]
    m = Manifest.parse(raw)
    assert m.matches_digest(Digest.of(raw, "sha512"))
    assert not m.matches_digest(Digest.of(raw + b" ", "sha512"))


_digests = st.binary(max_size=8).map(Digest.of)
_descs = st.builds(
    Descriptor,
    media_type=st.sampled_from([mt.OCI_LAYER_GZIP, mt.OCI_LAYER_ZSTD, "application/x.y+z"]),
    digest=_digests,
    size=st.integers(min_value=0, max_value=2**53),
    annotations=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2),
)


@given(st.lists(_descs, max_size=4), st.dictionaries(st.text(max_size=8), st.text(), max_size=3))
def test_build_parse_round_trip(layers: list[Descriptor], annotations: dict[str, str]) -> None:
    config = Descriptor(mt.OCI_CONFIG, Digest.of(b"{}"), 2)
    m = Manifest.build(mt.OCI_MANIFEST, config, layers, annotations)
    again = Manifest.parse(m.raw, mt.OCI_MANIFEST)
    assert again == m
    assert Manifest.build(mt.OCI_MANIFEST, config, layers, annotations).raw == m.raw
