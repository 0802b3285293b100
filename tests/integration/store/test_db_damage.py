"""A damaged ``lorry.db`` is reported, never re-created over blobs, and ``fsck --repair`` rebuilds
it from the blobs (issue 16, item 7). End to end through the CLI; the registry tests pull and
push through the real CNCF registry.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.digest import Digest
from lorry.oci import Index
from lorry.store import Store, StoreLayout
from lorry.store.db import database_damage
from lorry.store.fsck import fsck
from lorry.store.repair import repair
from lorry.testing.builder import BuiltImage, build_image
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout, skopeo_inspect_raw

KILLER = Path(__file__).with_name("repair_killer.py")


def _lorry(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = run(["--root", str(root), *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _blobs(root: Path) -> dict[str, str]:
    """Every file under blobs/ with the sha256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "blobs").rglob("*"))
        if p.is_file()
    }


def _damage(db: Path, how: str) -> None:
    if how == "zero":
        db.write_bytes(b"")
    elif how == "garbage":
        db.write_bytes(random.Random(16).randbytes(3 * 4096 + 17))
    elif how == "missing":
        db.unlink()
    else:
        raise AssertionError(how)


def _corrupt_table(db: Path, table: str) -> None:
    """Overwrite the root page of ``table`` so that PRAGMA quick_check fails."""
    conn = sqlite3.connect(db)
    page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    with db.open("r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xff" * 100)


@pytest.fixture
def copied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, BuiltImage]:
    """A store holding app:v1, copied in from a built OCI layout."""
    root = tmp_path / "root"
    one = build_image(tmp_path / "one", layers=2, seed=161, tag="v1")
    assert run(["--root", str(root), "copy", "-q", f"oci:{one.layout}:v1", "lorry:app:v1"]) == 0
    capsys.readouterr()
    return root, one


@pytest.mark.parametrize("how", ["zero", "garbage", "missing"])
def test_damaged_db_is_reported_untouched_then_repaired(
    copied: tuple[Path, BuiltImage], tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str
) -> None:
    root, one = copied
    db = root / "lorry.db"
    _damage(db, how)
    before_db = db.read_bytes() if db.exists() else None
    before_blobs = _blobs(root)

    rc, out, err = _lorry(root, capsys, "images")
    assert rc == 8 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"lorry: error: store database {db} ")
    assert "lorry fsck --repair" in err
    rc, _, err = _lorry(root, capsys, "inspect", "app:v1")
    assert rc == 8 and "lorry fsck --repair" in err
    rc, out, err = _lorry(root, capsys, "fsck", "--format", "json")
    assert rc == 8 and "lorry fsck --repair" in err
    doc = json.loads(out)
    assert not doc["Ok"] and [p["Kind"] for p in doc["Problems"]] == ["database"]
    # Nothing was re-created or written: the damaged file and every blob are as they were.
    assert (db.read_bytes() if db.exists() else None) == before_db
    assert not (root / "lorry.db-wal").exists()
    assert _blobs(root) == before_blobs

    rc, out, err = _lorry(root, capsys, "fsck", "--repair")
    assert rc == 0, err
    assert "rebuilt 1 images, 2 layers, 1 manifests" in out
    assert "lost: tags and digest references" in out and "0 problems" in out
    if before_db is not None:
        (kept,) = root.glob("damaged-*/lorry.db")
        assert kept.read_bytes() == before_db  # the user's file is kept, byte for byte
        assert f"moved the damaged database aside to {kept}" in out
    assert _blobs(root) == before_blobs

    rc, out, _ = _lorry(root, capsys, "images", "-q", "--no-trunc")
    assert rc == 0 and out.split() == [str(one.config_digest)]
    rc, out, _ = _lorry(root, capsys, "fsck")
    assert rc == 0 and "1 images" in out and "0 problems" in out
    # The image goes out with the manifest it came in with.
    dest = tmp_path / "out"
    assert _lorry(root, capsys, "copy", "-q", f"lorry:{one.config_digest}", f"oci:{dest}:x")[0] == 0
    index = json.loads((dest / "index.json").read_bytes())
    assert index["manifests"][0]["digest"] == str(one.manifest_digest)
    blob = dest / "blobs" / "sha256" / one.manifest_digest.hex
    assert blob.read_bytes() == one.manifest_bytes
    # Tagging works again on the rebuilt database.
    assert _lorry(root, capsys, "tag", str(one.config_digest), "app:v1")[0] == 0


def test_brand_new_store_and_empty_db_without_blobs_are_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "new"
    rc, out, _ = _lorry(root, capsys, "images", "-q", "--no-trunc")
    assert rc == 0 and out == "" and (root / "lorry.db").stat().st_size > 0
    assert _lorry(root, capsys, "fsck")[0] == 0
    # A creation killed before the first write leaves an empty file and no blobs: nothing lost.
    other = tmp_path / "killed-at-creation"
    other.mkdir()
    (other / "lorry.db").write_bytes(b"")
    assert _lorry(other, capsys, "images", "-q")[0] == 0
    assert _lorry(other, capsys, "fsck")[0] == 0


def test_repair_of_a_sound_store_changes_nothing(
    copied: tuple[Path, BuiltImage], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = copied
    rc, out, _ = _lorry(root, capsys, "fsck", "--repair")
    assert rc == 0 and "0 problems" in out and "rebuilt" not in out
    assert not list(root.glob("damaged-*"))
    rc, out, _ = _lorry(root, capsys, "images", "--format", "json")
    assert [(r["Repository"], r["Tag"]) for r in map(json.loads, out.splitlines())] == [
        ("app", "v1")
    ]


def test_corrupt_blob_found_by_repair_is_reported_kept_aside_and_not_registered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    one = build_image(tmp_path / "one", layers=2, seed=162, tag="v1")
    two = build_image(tmp_path / "two", layers=3, seed=163, tag="v2", compression="zstd")
    for built, ref in ((one, "one:v1"), (two, "two:v2")):
        src = f"oci:{built.layout}:{built.tag}"
        assert run(["--root", str(root), "copy", "-q", src, f"lorry:{ref}"]) == 0
    (root / "lorry.db").write_bytes(b"")
    bad = two.layer_digests[1]
    path = root / "blobs" / "sha256" / bad.hex
    flipped = bytearray(path.read_bytes())
    flipped[len(flipped) // 2] ^= 0x01
    path.write_bytes(bytes(flipped))
    capsys.readouterr()

    rc, out, err = _lorry(root, capsys, "fsck", "--repair", "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["Ok"] and doc["Checked"]["Images"] == 1
    rep = doc["Repair"]
    assert [c["Digest"] for c in rep["Corrupt"]] == [str(bad)]
    assert rep["Images"] == [str(one.config_digest)]
    assert [s["Digest"] for s in rep["Skipped"]] == [str(two.manifest_digest)]
    assert str(bad) in rep["Skipped"][0]["Reason"]
    # Kept, not deleted: the corrupt bytes sit in the quarantine, out of blobs/.
    assert not path.exists()
    (kept,) = root.glob(f"damaged-*/blobs/sha256/{bad.hex}")
    assert kept.read_bytes() == bytes(flipped)
    # The other layers and config of the skipped image stay for a later pull to reuse.
    assert rep["Unreferenced"] == 4
    rc, out, _ = _lorry(root, capsys, "images", "-q", "--no-trunc")
    assert out.split() == [str(one.config_digest)]
    assert _lorry(root, capsys, "fsck")[0] == 0


def test_index_is_linked_and_annotated_tags_come_back(tmp_path: Path) -> None:
    """An index stored beside two platform images is linked to both; an entry annotation that
    names a full reference gives the tag back, a bare tag cannot (it names no repository)."""
    root = tmp_path / "root"
    built = build_image(
        tmp_path / "multi", layers=1, seed=164, platforms=["linux/amd64", "linux/arm64/v8"]
    )
    argv = ["--root", str(root), "copy", "-q", "--all", f"oci:{built.layout}", "lorry:m:1"]
    assert run(argv) == 0
    assert built.index_bytes is not None
    index = json.loads(built.index_bytes)
    index["manifests"][0]["annotations"] = {"io.containerd.image.name": "example.com/team/app:v9"}
    index["manifests"][1]["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    raw = json.dumps(index).encode()
    with Store.open(root) as store:
        store.content.put_bytes(raw)
    (root / "lorry.db").write_bytes(b"")

    report = repair(StoreLayout(root))
    assert sorted(report.images, key=str) == sorted(
        (c.config_digest for c in built.children), key=str
    )
    assert report.indexes == 2 and report.manifests == 2
    assert report.references == ["example.com/team/app:v9"]
    with Store.open(root) as store:
        assert fsck(store).ok
        ref = store.refs.get("example.com/team/app", tag="v9")
        assert ref is not None and ref.image_id == built.children[0].config_digest
        for child in built.children:
            linked = {d for d, _ in store.images.manifests(child.config_digest)}
            assert linked == {child.manifest_digest, built.index_digest, Digest.of(raw)}
        assert Index.parse(store.content.read_bytes(Digest.of(raw))).manifests


def _spawn(root: Path, spec: str) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, str(KILLER), str(root), spec], capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout.splitlines()


def test_repair_killed_anywhere_leaves_damage_or_a_repaired_store(tmp_path: Path) -> None:
    built = build_image(tmp_path / "img", layers=2, seed=165, tag="v1")
    template = tmp_path / "template"
    assert run(["--root", str(template), "copy", "-q", f"oci:{built.layout}:v1", "lorry:a:v1"]) == 0
    (template / "lorry.db").write_bytes(b"")

    def fresh(name: str) -> Path:
        root = tmp_path / name
        subprocess.run(["cp", "-a", str(template), str(root)], check=True)
        return root

    rc, out = _spawn(fresh("count"), "count")
    assert rc == 0, out
    counts = json.loads(next(line for line in out if line.startswith("counts "))[7:])
    points = [f"rename:{k}" for k in range(1, counts["rename"] + 1)]
    points += [f"fsync:{k}" for k in range(1, counts["fsync"] + 1)]
    step = max(1, counts["sql"] // 12)
    points += [f"sql:{k}" for k in range(1, counts["sql"] + 1, step)]
    assert len(points) >= 15
    for i, point in enumerate(points):
        root = fresh(f"kill-{i}")
        rc, _ = _spawn(root, point)
        assert rc == -9, point
        layout = StoreLayout(root)
        kept = [p for p in [root / "lorry.db", *root.glob("damaged-*/lorry.db")] if p.exists()]
        assert any(p.stat().st_size == 0 for p in kept), point  # the user's file survives
        if database_damage(layout.database, layout.has_blobs) is not None:
            with pytest.raises(Exception, match="lorry fsck --repair"):
                Store.open(root)
            assert repair(layout).images == [built.config_digest], point
        with Store.open(root) as store:
            report = fsck(store)
            assert report.ok and report.images == 1, (point, report.problems)
        assert not list(root.glob(".lorry.db.repair-*")), point


@pytest.fixture
def pulled(
    registry: RegistryServer, image_builder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[Path, BuiltImage, str]:
    """A store that pulled REGISTRY/damage/app:v1 with ``lorry pull``."""
    built = image_builder(layers=3, seed=166)
    src = push_layout(built, registry, "damage/app", "v1").removeprefix("docker://")
    root = tmp_path / "root"
    assert run(["--root", str(root), "pull", "-q", src]) == 0
    capsys.readouterr()
    return root, built, src


@pytest.mark.integration
def test_pulled_image_after_repair_pushes_with_the_same_digest(
    pulled: tuple[Path, BuiltImage, str],
    registry: RegistryServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, built, _ = pulled
    (root / "lorry.db").write_bytes(b"")
    assert _lorry(root, capsys, "images")[0] == 8
    rc, out, err = _lorry(root, capsys, "fsck", "--repair")
    assert rc == 0, err
    assert "lost: distribution metadata" in out
    dst = f"{registry.host}/damage/repaired:v2"
    rc, _, err = _lorry(root, capsys, "push", "-q", str(built.config_digest), dst)
    assert rc == 0, err
    assert skopeo_inspect_raw(f"docker://{dst}") == built.manifest_bytes
    assert _lorry(root, capsys, "fsck")[0] == 0


@pytest.mark.integration
def test_what_a_corrupt_db_still_holds_is_salvaged(
    pulled: tuple[Path, BuiltImage, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """quick_check fails (one table's page overwritten), but refs, distmeta and image times are
    still readable: they come back, checked against what the blobs rebuilt."""
    root, built, src = pulled
    with Store.open(root) as store:
        created = store.images.get(built.config_digest).created
        remote = store.distmeta.for_diff_id(built.diff_ids[0])
        refs = [str(r) for r in store.refs.all()]
    assert remote and len(refs) == 2
    db = root / "lorry.db"
    _corrupt_table(db, "blob_info")
    damaged = db.read_bytes()
    rc, _, err = _lorry(root, capsys, "images")
    assert rc == 8 and "fails PRAGMA quick_check" in err and err.count("\n") == 1
    assert _lorry(root, capsys, "fsck")[0] == 8
    assert db.read_bytes() == damaged
    rc, out, err = _lorry(root, capsys, "fsck", "--repair", "--format", "json")
    assert rc == 0, err
    rep = json.loads(out)["Repair"]
    assert sorted(rep["References"]) == sorted(refs)
    assert rep["DistributionMetadata"] == len(built.diff_ids)
    assert not any("tags" in item or "distribution" in item for item in rep["Lost"])
    with Store.open(root) as store:
        assert store.images.get(built.config_digest).created == created
        assert store.distmeta.for_diff_id(built.diff_ids[0])[0].repository == remote[0].repository
    rc, out, _ = _lorry(root, capsys, "images", "--no-trunc", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["Tag"], r["ID"]) for r in rows] == [("v1", str(built.config_digest))]
    rc, out, _ = _lorry(root, capsys, "inspect", src)
    assert json.loads(out)[0]["RepoDigests"]
