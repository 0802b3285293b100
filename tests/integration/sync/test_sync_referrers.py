"""Referrers by the fallback tag schema: a cosign-style signature and an OCI artifact (with its
``sha256-<hex>`` referrers index) arrive with the image and still name its digest."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sync_helpers import head

from lorry import mediatypes as mt
from lorry.cli import run
from lorry.digest import Digest
from lorry.registry.client import RegistryClient, RegistrySession
from lorry.testing.builder import build_image
from lorry.testing.skopeo import push_layout

pytestmark = pytest.mark.integration

EMPTY = b"{}"


def _blob(client: RegistryClient, data: bytes) -> dict[str, object]:
    digest = Digest.of(data)
    client.upload_blob(client.start_upload(), io.BytesIO(data), digest, len(data))
    return {"digest": str(digest), "size": len(data)}


def _manifest(client: RegistryClient, tag: str | None, doc: dict[str, object]) -> dict[str, object]:
    raw = json.dumps(doc).encode()
    media_type = str(doc["mediaType"])
    digest = client.put_manifest(tag or Digest.of(raw), raw, media_type)  # None: by digest
    return {"mediaType": media_type, "digest": str(digest), "size": len(raw)}


def test_signature_and_artifact_follow_their_image(registry_factory, tmp_path: Path) -> None:
    src, dest = registry_factory(), registry_factory()
    built = build_image(tmp_path / "img", layers=1, seed=9, tag="1.0")
    push_layout(built, src, "signed/app", "1.0")
    image = built.top_digest
    subject = {
        "mediaType": built.top_media_type,
        "digest": str(image),
        "size": len(built.manifest_bytes),
    }
    fallback = f"sha256-{image.encoded}"
    with RegistrySession() as session:
        client = session.client(src.host, "signed/app")
        payload = json.dumps(
            {"critical": {"image": {"docker-manifest-digest": str(image)}, "type": "cosign"}}
        ).encode()
        sig_layer = {
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            **_blob(client, payload),
            "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQDtest"},
        }
        config = {"mediaType": mt.OCI_CONFIG, **_blob(client, b'{"architecture":"","os":""}')}
        signature = _manifest(
            client,
            f"{fallback}.sig",
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "config": config,
                "layers": [sig_layer],
            },
        )
        sbom = {"mediaType": "application/spdx+json", **_blob(client, b'{"spdxVersion":"2.3"}')}
        artifact = _manifest(
            client,
            None,
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_MANIFEST,
                "artifactType": "application/spdx+json",
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    **_blob(client, EMPTY),
                },
                "layers": [sbom],
                "subject": subject,
            },
        )
        index = _manifest(
            client,
            fallback,
            {
                "schemaVersion": 2,
                "mediaType": mt.OCI_INDEX,
                "manifests": [{**artifact, "artifactType": "application/spdx+json"}],
            },
        )
    args = ["sync", "--src", f"docker://{src.host}/signed/app", "--dest", f"docker://{dest.host}"]
    assert run([*args, "-q", "--report", str(tmp_path / "r.json")]) == 0
    entries = json.loads((tmp_path / "r.json").read_text())["images"]
    assert {e["source"].rsplit(":", 1)[1]: e["referrer_of"] for e in entries} == {
        "1.0": None,
        f"{fallback}.sig": str(image),
        fallback: str(image),
    }
    assert head(dest.host, "signed/app", "1.0") == image
    assert str(head(dest.host, "signed/app", f"{fallback}.sig")) == signature["digest"]
    assert str(head(dest.host, "signed/app", fallback)) == index["digest"]
    with RegistrySession() as session:
        mirror = session.client(dest.host, "signed/app")
        raw, _, _ = mirror.get_manifest(Digest.parse(str(artifact["digest"])))
        assert json.loads(raw)["subject"]["digest"] == str(image)
        raw, _, _ = mirror.get_manifest(fallback)
        assert json.loads(raw)["manifests"][0]["digest"] == artifact["digest"]
    # a second run finds every referrer unchanged
    assert run([*args, "-q", "--report", str(tmp_path / "r2.json")]) == 0
    again = json.loads((tmp_path / "r2.json").read_text())["images"]
    assert {e["action"] for e in again} == {"unchanged"} and len(again) == 3
