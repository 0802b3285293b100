"""Manifests against the real registry: byte-exact with skopeo, verified digests, HEAD, PUT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from regclient_helpers import push_blob, run_lorry

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, InvalidInputError, NotFoundError
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout, skopeo_inspect_raw

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("schema2", {"media_types": "docker"}),
        ("oci", {"media_types": "oci"}),
        ("index", {"media_types": "oci", "platforms": ["linux/amd64", "linux/arm64/v8"]}),
    ],
)
def test_manifest_and_digest_match_skopeo(
    registry: RegistryServer, image_builder, name: str, options: dict[str, object]
) -> None:
    built = image_builder(layers=1, **options)
    push_layout(built, registry, f"regclient/skopeo-{name}", "v1")
    ref = f"{registry.host}/regclient/skopeo-{name}:v1"
    expected = skopeo_inspect_raw(f"docker://{ref}")
    shown = run_lorry("manifest", ref)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == expected
    digest = run_lorry("digest", ref)
    assert digest.stdout.decode().strip() == str(Digest.of(expected)) == str(built.top_digest)


def test_get_head_by_tag_and_digest(registry: RegistryServer, image_builder, make_session) -> None:
    built = image_builder(layers=1, media_types="docker")
    push_layout(built, registry, "regclient/get-head", "t1")
    client = make_session().client(registry.host, "regclient/get-head")
    raw, media_type, digest = client.get_manifest("t1")
    assert (raw, media_type, digest) == (
        built.manifest_bytes,
        mt.DOCKER_MANIFEST_V2,
        built.top_digest,
    )
    assert client.get_manifest(digest) == (raw, media_type, digest)
    info = client.head_manifest(str(digest))
    assert info is not None
    assert (info.media_type, info.digest, info.size) == (media_type, digest, len(raw))
    assert client.head_manifest("no-such-tag") is None


def test_missing_manifest_error_names_registry_and_object(
    registry: RegistryServer, make_session
) -> None:
    client = make_session().client(registry.host, "regclient/none")
    with pytest.raises(NotFoundError) as info:
        client.get_manifest("nope")
    assert str(info.value).startswith(f"fetching manifest nope from {registry.host}/regclient/none")
    assert info.value.status == 404 and "MANIFEST_UNKNOWN" in info.value.codes


def _oci_manifest(client, payload: bytes) -> bytes:
    config = push_blob(client, b"{}")
    layer = push_blob(client, payload)
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": str(config), "size": 2},
        "layers": [{"mediaType": mt.OCI_LAYER, "digest": str(layer), "size": len(payload)}],
    }
    return json.dumps(doc).encode()


def test_put_by_tag_and_digest_then_delete(registry_factory, make_session, tmp_path: Path) -> None:
    server = registry_factory(delete=True)
    client = make_session().client(server.host, "regclient/put")
    raw = _oci_manifest(client, b"layer bytes")
    digest = client.put_manifest("v1", raw, mt.OCI_MANIFEST)
    assert digest == Digest.of(raw)
    assert client.put_manifest(digest, raw, mt.OCI_MANIFEST) == digest
    assert client.get_manifest("v1") == (raw, mt.OCI_MANIFEST, digest)
    client.delete_manifest(digest)
    assert client.head_manifest(digest) is None
    with pytest.raises(NotFoundError):
        client.delete_manifest(digest)


def test_put_refuses_mismatches_before_sending(registry: RegistryServer, make_session) -> None:
    client = make_session().client(registry.host, "regclient/put-bad")
    raw = json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST}).encode()
    with pytest.raises(InvalidInputError, match="document says"):
        client.put_manifest("x", raw, mt.DOCKER_MANIFEST_V2)
    with pytest.raises(IntegrityError, match="hash to"):
        client.put_manifest(Digest.of(b"other"), raw, mt.OCI_MANIFEST)
    with pytest.raises(InvalidInputError, match="limit"):
        client.put_manifest("x", b" " * (4 * 1024 * 1024 + 1), mt.OCI_MANIFEST)
