"""Referrers: a cosign-style signature and an OCI artifact arrive with the image and still name
its digest, found by the fallback tag schema (``sha256-<hex>``) or the OCI 1.1 referrers API
(the CNCF registry behind :class:`~lorry.testing.referrers_api.ReferrersProxy`), and written
the destination's way: the API's, or the fallback index lorry keeps there."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sync_helpers import head, read_report

from lorry import mediatypes as mt
from lorry.cli import run
from lorry.digest import Digest
from lorry.registry.client import RegistryClient, RegistrySession
from lorry.registry.referrers import fallback_tag
from lorry.testing.builder import BuiltImage, build_image
from lorry.testing.referrers_api import ReferrersProxy
from lorry.testing.skopeo import push_layout
from lorry.transports.oci_layout import REF_NAME

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
        str(artifact["digest"]).partition(":")[2]: str(image),  # the artifact, by digest
        fallback: str(image),  # the index, copied as the source has it
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
    assert {e["action"] for e in again} == {"unchanged"} and len(again) == 4


def _artifact(client: RegistryClient, subject: dict[str, object], text: bytes) -> dict[str, object]:
    """Push an SBOM artifact whose subject is ``subject`` (by digest, no tag)."""
    sbom = {"mediaType": "application/spdx+json", **_blob(client, text)}
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": mt.OCI_EMPTY, **_blob(client, EMPTY)},
        "layers": [sbom],
        "subject": subject,
    }
    return _manifest(client, None, doc)


def _subject(built: BuiltImage) -> dict[str, object]:
    return {
        "mediaType": built.top_media_type,
        "digest": str(built.top_digest),
        "size": len(built.manifest_bytes),
    }


def test_referrers_api_source_to_a_registry_without_it(registry_factory, tmp_path: Path) -> None:
    upstream, dest = registry_factory(), registry_factory()
    with ReferrersProxy(upstream.url) as api:
        src = api.host
        built = build_image(tmp_path / "img", layers=1, seed=11, tag="2.0")
        push_layout(built, upstream, "api/app", "2.0")
        image = built.top_digest
        with RegistrySession() as session:
            artifact = _artifact(session.client(api.host, "api/app"), _subject(built), b"{}")
            listed = session.client(api.host, "api/app").list_tags()
            assert listed == ["2.0"]  # the fallback tag is hidden: only the API finds it
        args = [
            "sync",
            "-q",
            "--src",
            f"docker://{api.host}/api/app",
            "--dest",
            f"docker://{dest.host}",
        ]
        assert run([*args, "--report", str(tmp_path / "r.json")]) == 0
        layout = tmp_path / "layout"
        to_layout = [*args[:-1], f"oci:{layout}"]
        assert run(to_layout) == 0
        assert run([*to_layout, "--report", str(tmp_path / "l2.json")]) == 0
        assert {e["action"] for e in read_report(tmp_path / "l2.json")} == {"unchanged"}
        asked = [r.path for r in api.requests if "/referrers/" in r.path]
        assert f"/v2/api/app/referrers/{image}" in asked
        assert not [r for r in api.requests if r.path.endswith(f"/manifests/{fallback_tag(image)}")]
    entries = read_report(tmp_path / "r.json")
    by_action = {(e["source"], e["action"]) for e in entries}
    assert (f"docker://{src}/api/app@{artifact['digest']}", "copied") in by_action
    with RegistrySession() as session:
        mirror = session.client(dest.host, "api/app")
        assert mirror.referrers(image) is None  # the CNCF registry has no API...
        raw, _, _ = mirror.get_manifest(fallback_tag(image))  # ...so lorry wrote the index
        (entry,) = json.loads(raw)["manifests"]
        assert entry["digest"] == artifact["digest"]
        assert entry["artifactType"] == "application/spdx+json"
        raw, _, _ = mirror.get_manifest(Digest.parse(str(artifact["digest"])))
        assert json.loads(raw)["subject"]["digest"] == str(image)
    # the layout has the artifact and, under api/app:sha256-<hex>, the index naming it
    index_json = json.loads((layout / "index.json").read_text())
    named = {
        m["annotations"].get(REF_NAME): m for m in index_json["manifests"] if m.get("annotations")
    }
    fallback = named[f"api/app:{fallback_tag(image)}"]
    blob = layout / "blobs" / "sha256" / fallback["digest"].partition(":")[2]
    assert [m["digest"] for m in json.loads(blob.read_bytes())["manifests"]] == [artifact["digest"]]
    assert (layout / "blobs" / "sha256" / str(artifact["digest"]).partition(":")[2]).is_file()


def test_fallback_source_to_a_registry_with_the_api(registry_factory, tmp_path: Path) -> None:
    src, upstream = registry_factory(), registry_factory()
    built = build_image(tmp_path / "img", layers=1, seed=12, tag="3.0")
    push_layout(built, src, "fb/app", "3.0")
    image = built.top_digest
    with RegistrySession() as session:
        client = session.client(src.host, "fb/app")
        one = _artifact(client, _subject(built), b'{"n":1}')
        two = _artifact(client, _subject(built), b'{"n":2}')
        index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [one, two]}
        _manifest(client, fallback_tag(image), index)
    with ReferrersProxy(upstream.url) as api:
        args = [
            "sync",
            "-q",
            "--src",
            f"docker://{src.host}/fb/app",
            "--dest",
            f"docker://{api.host}",
        ]
        assert run(args) == 0
        # the destination indexes them itself: lorry pushed each by digest, never the tag
        puts = [r.path for r in api.requests if r.method == "PUT" and "/manifests/" in r.path]
        assert f"/v2/fb/app/manifests/{fallback_tag(image)}" not in puts
        assert f"/v2/fb/app/manifests/{one['digest']}" in puts
        with RegistrySession() as session:
            found = session.client(api.host, "fb/app").referrers(image)
        assert found is not None
        assert {str(d.digest) for d in found} == {one["digest"], two["digest"]}
        # a second run finds the image and both referrers unchanged
        assert run([*args, "--report", str(tmp_path / "r2.json")]) == 0
        again = read_report(tmp_path / "r2.json")
        assert {e["action"] for e in again} == {"unchanged"} and len(again) == 3
