"""Store commands on a store filled by the test builder: images, inspect, tag, rmi, prune, fsck."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.store import Store
from lorry.testing.builder import BuiltImage, build_image
from lorry.testing.store_fill import fill_store


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, BuiltImage, BuiltImage]:
    root = tmp_path / "root"
    one = build_image(tmp_path / "one", layers=2, seed=1)
    two = build_image(tmp_path / "two", layers=3, seed=2, compression="zstd")
    with Store.open(root) as store:
        fill_store(store, one.layout, "alpine:3")
        fill_store(store, two.layout, "registry.example:5000/team/app:v2")
    return root, one, two


def _lorry(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    rc = run(["--root", str(root), *args])
    out = capsys.readouterr().out
    return rc, out


def test_images_table_json_and_quiet(filled, capsys) -> None:
    root, one, two = filled
    rc, out = _lorry(root, capsys, "images")
    assert rc == 0
    assert "alpine" in out and "registry.example:5000/team/app" in out
    assert one.config_digest.short in out
    rc, out = _lorry(root, capsys, "images", "--no-trunc", "--format", "json")
    rows = {r["ID"]: r for r in map(json.loads, out.splitlines())}
    assert rows[str(one.config_digest)]["Repository"] == "alpine"
    assert rows[str(two.config_digest)]["Tag"] == "v2"
    assert rows[str(two.config_digest)]["Size"].endswith("B")
    rc, out = _lorry(root, capsys, "images", "-q", "--no-trunc")
    assert set(out.split()) == {str(one.config_digest), str(two.config_digest)}
    rc, out = _lorry(root, capsys, "images", "-q")
    assert set(out.split()) == {one.config_digest.hex[:12], two.config_digest.hex[:12]}


def test_inspect(filled, capsys) -> None:
    root, one, _ = filled
    rc, out = _lorry(root, capsys, "inspect", "alpine:3", one.config_digest.hex[:12])
    assert rc == 0
    docs = json.loads(out)
    assert len(docs) == 2 and docs[0] == docs[1]
    doc = docs[0]
    assert doc["Id"] == str(one.config_digest)
    assert doc["RepoTags"] == ["alpine:3"]
    assert doc["RepoDigests"] == [f"alpine@{one.manifest_digest}"]
    assert doc["RootFS"] == {"Type": "layers", "Layers": [str(d) for d in one.diff_ids]}
    assert doc["Os"] == "linux" and doc["Architecture"] == "amd64"
    assert doc["Size"] > 0 and "Config" in doc and "Created" in doc
    rc, _ = _lorry(root, capsys, "inspect", "nosuch:tag")
    assert rc == 3


def test_tag_rmi_prune_fsck(filled, capsys) -> None:
    root, one, two = filled
    assert _lorry(root, capsys, "tag", "alpine:3", "mine/copy")[0] == 0
    rc, out = _lorry(root, capsys, "images", "--format", "json")
    assert {"mine/copy", "alpine"} <= {r["Repository"] for r in map(json.loads, out.splitlines())}
    # By ID with two names: refused unless forced.
    rc, _ = _lorry(root, capsys, "rmi", str(one.config_digest))
    assert rc == 2
    rc, out = _lorry(root, capsys, "rmi", "mine/copy")
    assert rc == 0 and out.strip() == "Untagged: mine/copy:latest"
    rc, out = _lorry(root, capsys, "rmi", "alpine:3", "--format", "json")
    doc = json.loads(out)
    assert doc["Deleted"] == [str(one.config_digest)]
    assert "docker.io/library/alpine:3" in doc["Untagged"]
    rc, out = _lorry(root, capsys, "prune", "--format", "json")
    freed = json.loads(out)
    assert len(freed["Layers"]) == 2 and freed["Freed"] > 0
    assert {str(d) for d in one.layer_digests} <= set(freed["Blobs"])
    rc, out = _lorry(root, capsys, "images", "-q", "--no-trunc")
    assert out.split() == [str(two.config_digest)]
    rc, out = _lorry(root, capsys, "fsck")
    assert rc == 0 and "0 problems" in out


def test_fsck_reports_damage(filled, capsys) -> None:
    root, _, two = filled
    blob = root / "blobs" / "sha256" / two.layer_digests[1].hex
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    rc, out = _lorry(root, capsys, "fsck", "--format", "json")
    assert rc == 8
    doc = json.loads(out)
    assert not doc["Ok"]
    names = {p["Name"] for p in doc["Problems"]}
    assert str(two.layer_digests[1]) in names
