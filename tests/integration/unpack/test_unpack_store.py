"""``lorry unpack`` from the store: umoci's tree, DiffIDs checked, DIR guarded (issues 11, 12)."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from unpack_helpers import lorry, stored, tree

from lorry.digest import Digest
from lorry.store import Store
from lorry.testing.builder import LayerSpec
from lorry.testing.evil_layers import layer_tar
from lorry.testing.hostile import image_of_tars
from lorry.testing.pytest_plugin import HostileFactory, ImageBuilder

pytestmark = pytest.mark.integration

INTEGRITY, INVALID = 4, 2
LIE = Digest.of(b"not the content of this layer")


#: The kinds of image the pull tests use: layer counts, incompressible data, each compression,
#: Docker media types (every default layer has links, whiteouts and opaque directories).
IMAGE_KINDS: dict[str, dict[str, object]] = {
    "three-layers": {"layers": 3, "seed": 4242},
    "one-layer": {"layers": 1, "seed": 15},
    "random-data": {
        "layers": [LayerSpec(files=4, size=600_000, random_fraction=1.0), LayerSpec(files=30)],
        "seed": 24,
    },
    "zstd": {"layers": 2, "seed": 11, "compression": "zstd"},
    "uncompressed": {"layers": 2, "seed": 12, "compression": "none"},
    "docker-types": {"layers": 2, "seed": 13, "media_types": "docker"},
}


@pytest.mark.parametrize("kind", sorted(IMAGE_KINDS))
def test_the_tree_equals_umoci_unpack(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    umoci = shutil.which("umoci")
    assert umoci is not None, "umoci is installed by scripts/test"
    built = image_builder(**IMAGE_KINDS[kind])
    root = tmp_path / "store"
    ref = stored(built, root, capsys, "good")
    dest = tmp_path / "rootfs"
    code, out, err = lorry(root, capsys, "unpack", ref, str(dest))
    assert code == 0, err
    assert "unpacked" in out and err.count("Pull complete") == len(built.layer_digests)
    bundle = tmp_path / "bundle"
    layout = built.layout
    if kind == "zstd":  # umoci reads gzip only: skopeo recompresses the same tars
        layout = tmp_path / "for-umoci"
        convert = [
            "skopeo", "copy", "-q", "--dest-compress-format", "gzip",
            f"oci:{built.layout}:{built.tag}", f"oci:{layout}:{built.tag}",
        ]  # fmt: skip
        done = subprocess.run(convert, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode()
    if kind == "docker-types":  # umoci reads OCI types only: the same layers, OCI-typed
        twin = image_builder(**{**IMAGE_KINDS[kind], "media_types": "oci"})
        assert twin.content_diff_ids == built.content_diff_ids
        layout = twin.layout
    done = subprocess.run(
        [umoci, "unpack", "--rootless", "--image", f"{layout}:{built.tag}", str(bundle)],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    ours, theirs = tree(dest), tree(bundle / "rootfs")
    assert ours and ours == theirs
    assert not list(tmp_path.glob(".rootfs.lorry-incomplete"))
    # every layer was inflated: the store now knows their DiffIDs are true
    assert lorry(root, capsys, "fsck", "--deep")[0] == 0


def test_a_lying_layer_fails_the_unpack_and_is_marked_bad(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = image_builder(layers=2, seed=1111, claimed_diff_ids={1: LIE})
    root = tmp_path / "store"
    ref = stored(built, root, capsys, "lying")
    dest = tmp_path / "rootfs"
    code, _, err = lorry(root, capsys, "unpack", "-q", ref, str(dest))
    assert code == INTEGRITY and err.count("\n") == 1, err
    assert str(built.layer_digests[1]) in err and str(LIE) in err and "marked bad" in err
    assert (tmp_path / ".rootfs.lorry-incomplete").exists()  # never looks like a good tree
    code, _, err = lorry(root, capsys, "unpack", "--force", ref, str(dest))
    assert code == INTEGRITY and "marked bad" in err, err  # known bad: nothing applied
    code, _, err = lorry(root, capsys, "verify", ref)
    assert code == INTEGRITY, err
    # the unfinished DIR is noticed by the next unpack, and finished by --force
    good = stored(image_builder(layers=1, seed=77), root, capsys, "small")
    code, _, err = lorry(root, capsys, "unpack", good, str(dest))
    assert code == INVALID and "unfinished unpack" in err and "--force" in err, err
    assert lorry(root, capsys, "unpack", "-q", "--force", good, str(dest))[0] == 0
    assert not (tmp_path / ".rootfs.lorry-incomplete").exists()


def test_a_non_empty_dir_is_refused_and_left_as_it_was(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = image_builder(layers=1, seed=77)
    root = tmp_path / "store"
    ref = stored(built, root, capsys, "small")
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    code, _, err = lorry(root, capsys, "unpack", ref, str(dest))
    assert code == INVALID and str(dest) in err and "--force" in err, err
    assert [p.name for p in dest.iterdir()] == ["keep.txt"]
    assert (dest / "keep.txt").read_text() == "mine"
    code, _, err = lorry(root, capsys, "unpack", "--force", "-q", ref, str(dest))
    assert code == 0, err
    assert (dest / "keep.txt").read_text() == "mine" and len(list(dest.iterdir())) > 1
    code, _, err = lorry(root, capsys, "unpack", "nosuch/image:v1", str(tmp_path / "x"))
    assert code == 3 and "nosuch" in err, err
    assert not (tmp_path / "x").exists()


def test_an_unpack_killed_midway_is_finished_by_force(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = [LayerSpec(files=3000, size=3_000_000)] * 3
    built = image_builder(layers=specs, seed=9090)
    root = tmp_path / "store"
    ref = stored(built, root, capsys, "big")
    dest, marker = tmp_path / "rootfs", tmp_path / ".rootfs.lorry-incomplete"
    cmd = [sys.executable, "-m", "lorry", "--root", str(root), "unpack", "-q", ref, str(dest)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (dest.is_dir() and any(dest.iterdir())) and time.monotonic() < deadline:
        assert proc.poll() is None, "the unpack ended before it could be killed"
        time.sleep(0.002)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    assert marker.exists()  # a killed unpack never looks like a good tree
    code, _, err = lorry(root, capsys, "unpack", "-q", ref, str(dest))
    assert code == INVALID and "unfinished unpack" in err, err
    code, _, err = lorry(root, capsys, "unpack", "-q", "--force", ref, str(dest))
    assert code == 0, err
    assert not marker.exists()
    fresh = tmp_path / "fresh"
    assert lorry(root, capsys, "unpack", "-q", ref, str(fresh))[0] == 0
    assert tree(dest) == tree(fresh)


def test_export_is_the_unpacked_tree_as_one_tar(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = image_builder(layers=3, seed=4242)  # with whiteouts, opaque dirs and hard links
    root = tmp_path / "store"
    ref = stored(built, root, capsys, "good")
    assert lorry(root, capsys, "unpack", "-q", ref, str(tmp_path / "rootfs"))[0] == 0
    out = tmp_path / "flat.tar"
    code, _, err = lorry(root, capsys, "export", ref, "-o", str(out))
    assert code == 0, err
    flat = tmp_path / "flat"
    flat.mkdir()
    with tarfile.open(out) as tar:
        names = [m.name for m in tar]
        assert len(names) == len(set(names)) and not any(".wh." in n for n in names)
        tar.extractall(flat, filter="tar")
    assert tree(flat) == tree(tmp_path / "rootfs")
    assert not list(tmp_path.glob(".flat.tar.lorry-tmp-*"))
    code, _, err = lorry(root, capsys, "export", "nosuch:v1", "-o", str(tmp_path / "n.tar"))
    assert code == 3 and not (tmp_path / "n.tar").exists(), err


def test_a_damaged_stored_blob_fails_unpack_and_export_naming_it(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = image_builder(layers=2, seed=5150)
    root = tmp_path / "store"
    ref = stored(built, root, capsys, "damaged")
    with Store.open(root) as store:
        blob = store.layout.blob(built.layer_digests[1])
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    code, _, err = lorry(root, capsys, "unpack", "-q", ref, str(tmp_path / "rootfs"))
    assert code == INTEGRITY and err.count("\n") == 1, err
    assert str(built.layer_digests[1]) in err, err
    assert (tmp_path / ".rootfs.lorry-incomplete").exists()
    out = tmp_path / "flat.tar"
    out.write_bytes(b"what the user had")
    code, _, err = lorry(root, capsys, "export", ref, "-o", str(out))
    assert code == INTEGRITY and str(built.layer_digests[1]) in err, err
    assert out.read_bytes() == b"what the user had"  # never replaced by a partial tar
    assert not list(tmp_path.glob(".flat.tar.lorry-tmp-*"))


def test_export_writes_a_hard_link_whose_target_went_away_as_a_file(
    hostile_registry: HostileFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lower = layer_tar(
        [("f", "a", b"lower a"), ("h", "b", "a"), ("f", "c", b"lower c"), ("h", "d", "c")]
    )
    upper = layer_tar([("f", ".wh.a", b""), ("f", "c", b"upper c"), ("f", "e", b"e")])
    reg = hostile_registry()
    reg.add_image("links", "v1", image_of_tars([lower, upper]))
    root = tmp_path / "store"
    code, _, err = lorry(root, capsys, "pull", "-q", f"{reg.host}/links:v1")
    assert code == 0, err
    out = tmp_path / "flat.tar"
    code, _, err = lorry(root, capsys, "export", f"{reg.host}/links:v1", "-o", str(out))
    assert code == 0, err
    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar}
        assert set(members) == {"b", "c", "d", "e"}  # a was deleted above
        # b linked to the deleted a, d to the c the upper layer replaced: both are files now
        assert members["b"].isreg() and members["d"].isreg()
        content = {n: tar.extractfile(m).read() for n, m in members.items()}  # type: ignore[union-attr]
    assert content == {"b": b"lower a", "c": b"upper c", "d": b"lower c", "e": b"e"}
    # the same tree as an unpack makes
    assert lorry(root, capsys, "unpack", "-q", f"{reg.host}/links:v1", str(tmp_path / "t"))[0] == 0
    flat = tmp_path / "flat"
    flat.mkdir()
    with tarfile.open(out) as tar:
        tar.extractall(flat, filter="tar")
    assert {k: v[2] for k, v in tree(flat).items()} == {
        k: (v[2][1] if isinstance(v[2], tuple) else v[2]) for k, v in tree(tmp_path / "t").items()
    }


def test_extracting_reports_bytes_in_docker_json(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = image_builder(layers=[LayerSpec(files=6, size=3_000_000, random_fraction=1.0)], seed=8)
    root = tmp_path / "store"
    ref = stored(built, root, capsys, "bytes")
    code, _, err = lorry(root, capsys, "unpack", "--progress", "json", ref, str(tmp_path / "t"))
    assert code == 0, err
    events = [json.loads(line) for line in err.splitlines()]
    (layer,) = {e["id"] for e in events}
    size = built.layer_sizes[0]
    extracting = [e["progressDetail"] for e in events if e["status"] == "Extracting"]
    currents = [d.get("current", 0) for d in extracting]
    assert len(extracting) >= 3 and currents == sorted(currents) and currents[-1] == size
    assert {d["total"] for d in extracting} == {size}
    assert events[-1]["status"] == "Pull complete" and layer == built.layer_digests[0].hex[:12]


def test_a_destination_that_runs_out_of_room_is_one_line_and_keeps_the_users_files(
    image_builder: ImageBuilder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = image_builder(layers=[LayerSpec(files=3, size=3_000_000, random_fraction=1.0)], seed=9)
    root = tmp_path / "store"
    ref = stored(built, root, capsys, "room")
    dest = tmp_path / "mine"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")

    def small_files() -> None:  # a filesystem with no room for a 1 MB file, as far as we write
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (500_000, 500_000))

    cmd = [sys.executable, "-m", "lorry", "--root", str(root), "unpack", "-q", "--force", ref]
    done = subprocess.run(
        [*cmd, str(dest)], capture_output=True, text=True, preexec_fn=small_files, check=False
    )
    assert done.returncode == 8, done.stderr
    assert done.stderr.count("\n") == 1 and "no space left writing into" in done.stderr
    assert str(dest) in done.stderr and "entry" in done.stderr, done.stderr
    assert (dest / "keep.txt").read_text() == "mine"  # nothing the user had is gone
    assert (tmp_path / ".mine.lorry-incomplete").exists()


def _owned_tar() -> bytes:
    """A layer whose entries belong to uid/gid 0 and 1000."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, uid in (("root-file", 0), ("user-file", 1000)):
            info = tarfile.TarInfo(name)
            info.size, info.uid, info.gid, info.mode = 2, uid, uid, 0o644
            tar.addfile(info, io.BytesIO(b"hi"))
    return buf.getvalue()


@pytest.mark.skipif(os.geteuid() != 0, reason="owners are set only as root")
def test_uid_and_gid_maps_shift_owners_and_refuse_unmapped_ones(
    hostile_registry: HostileFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = hostile_registry()
    reg.add_image("owned", "v1", image_of_tars([_owned_tar()]))
    root = tmp_path / "store"
    ref = f"{reg.host}/owned:v1"
    assert lorry(root, capsys, "pull", "-q", ref)[0] == 0
    maps = ["--uid-map", "0:100000:65536", "--gid-map", "0:200000:65536"]
    code, _, err = lorry(root, capsys, "unpack", "-q", *maps, ref, str(tmp_path / "t"))
    assert code == 0, err
    owners = {p.name: (p.stat().st_uid, p.stat().st_gid) for p in (tmp_path / "t").iterdir()}
    assert owners == {"root-file": (100000, 200000), "user-file": (101000, 201000)}
    code, _, err = lorry(
        root, capsys, "unpack", "-q", "--uid-map", "0:100000:1", ref, str(tmp_path / "u")
    )
    assert code == INVALID and err.count("\n") == 1, err
    assert "'user-file'" in err and "uid 1000 is outside --uid-map" in err, err
