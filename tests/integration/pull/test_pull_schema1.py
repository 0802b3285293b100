"""``lorry pull`` of a schema1 image from the real registry (schema1 enabled), pushed by skopeo.

skopeo converts a built OCI image to a signed schema1 manifest (``--format v2s1``, signed with
a key it generates); the image's config gets two ``empty_layer`` steps first, which skopeo
turns into ``throwaway`` entries. lorry must pull only the real layers, synthesise the config
docker would, tag it, and leave a store that fsck finds clean.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from lorry import mediatypes as mt
from lorry.cli import run
from lorry.digest import DiffID, Digest
from lorry.oci import ImageConfig, Schema1Manifest
from lorry.oci.schema1_config import config_from_schema1
from lorry.store import Store
from lorry.testing.builder import BuiltImage, build_image
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import skopeo_copy, skopeo_inspect_raw

EMPTY_STEPS = [
    (1, {"created": "2024-01-01T00:00:01Z", "created_by": "ENV A=<1>&2", "empty_layer": True}),
    (3, {"created": "2024-01-01T00:00:02Z", "created_by": 'CMD ["sh"]', "empty_layer": True}),
]


def _put_blob(layout: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}"


def _add_empty_steps(built: BuiltImage) -> None:
    """Give the layout's config two empty-layer history steps (a new config and manifest)."""
    config = json.loads(built.config_bytes)
    for index, step in EMPTY_STEPS:
        config["history"].insert(index, step)
    config_bytes = json.dumps(config).encode()
    manifest = json.loads(built.manifest_bytes)
    manifest["config"] |= {
        "digest": _put_blob(built.layout, config_bytes),
        "size": len(config_bytes),
    }
    manifest_bytes = json.dumps(manifest).encode()
    index = json.loads((built.layout / "index.json").read_text())
    index["manifests"][0] |= {
        "digest": _put_blob(built.layout, manifest_bytes),
        "size": len(manifest_bytes),
    }
    (built.layout / "index.json").write_text(json.dumps(index))


@pytest.fixture
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No credentials from the user's files; returns the store root."""
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "no-auth.json"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    return tmp_path / "root"


@pytest.fixture
def pushed(tmp_path: Path, registry_factory: Any) -> tuple[BuiltImage, str, bytes]:
    """A 2-layer image with 2 empty steps, pushed as signed schema1; (built, ref, manifest)."""
    built = build_image(tmp_path / "img", layers=2, seed=11)
    _add_empty_steps(built)
    registry: RegistryServer = registry_factory(schema1=True)
    ref = f"{registry.host}/test/schema1:v1"
    skopeo_copy(
        f"oci:{built.layout}:{built.tag}", f"docker://{ref}", extra_args=["--format", "v2s1"]
    )
    return built, ref, skopeo_inspect_raw(f"docker://{ref}")


def _lorry(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    rc = run(["--root", str(root), *args])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


def test_registry_serves_signed_schema1_with_throwaway_entries(pushed: Any) -> None:
    _, _, raw = pushed
    m = Schema1Manifest.parse(raw, mt.DOCKER_MANIFEST_V1_SIGNED)
    assert m.signed and len(m.fs_layers) == 4
    throwaway = [json.loads(h).get("throwaway", False) for h in m.history]
    assert throwaway == [True, False, True, False]  # top first


def test_pull_synthesises_the_config(
    pushed: Any, hermetic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built, ref, raw = pushed
    manifest = Schema1Manifest.parse(raw, mt.DOCKER_MANIFEST_V1_SIGNED)
    diff_ids = [DiffID(d) for d in built.diff_ids]
    image_id = Digest.of(config_from_schema1(manifest, diff_ids))

    assert _lorry(hermetic, capsys, "pull", "-q", ref).strip() == ref
    (doc,) = json.loads(_lorry(hermetic, capsys, "inspect", ref))
    assert doc["RootFS"] == {"Type": "layers", "Layers": [str(d) for d in built.diff_ids]}
    assert doc["Id"] == str(image_id)
    assert doc["RepoDigests"] == [f"{ref.rsplit(':', 1)[0]}@{manifest.digest}"]
    assert doc["Os"] == "linux" and doc["Architecture"] == "amd64"

    with Store.open(hermetic) as store:
        config = ImageConfig.parse(store.content.read_bytes(image_id), mt.DOCKER_CONFIG)
    assert [h.empty_layer for h in config.history] == [False, True, False, True]
    assert config.history[1].created_by == "ENV A=<1>&2"
    assert b"\\u003c1\\u003e\\u0026" in config.raw  # Go's escaping survives the round trip

    report = json.loads(_lorry(hermetic, capsys, "fsck", "--format", "json"))
    assert report["Ok"] is True and report["Problems"] == []


def test_pull_by_payload_digest(
    pushed: Any, hermetic: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built, ref, raw = pushed
    manifest = Schema1Manifest.parse(raw, mt.DOCKER_MANIFEST_V1_SIGNED)
    by_digest = f"{ref.rsplit(':', 1)[0]}@{manifest.digest}"
    assert _lorry(hermetic, capsys, "pull", "-q", by_digest).strip() == by_digest
    (doc,) = json.loads(_lorry(hermetic, capsys, "inspect", by_digest))
    assert doc["RootFS"]["Layers"] == [str(d) for d in built.diff_ids]
    assert doc["RepoTags"] == []
