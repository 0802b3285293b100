"""Bad input to ``lorry copy`` and ``lorry load -i``: one clear line, a non-zero exit, no mess.

Every case runs the real CLI (``python -m lorry``) and checks that stderr is exactly one
``lorry: error: …`` line naming the file or reference at fault, that there is no traceback,
that the exit code is the one ``lorry.errors`` gives the kind of failure (2 invalid input,
3 not found, 4 integrity, 7 unsupported), that stdout stays empty, and that nothing the user
could take for a good copy is left behind: no new layout, no archive at the target path, an
existing destination byte-identical to before.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from lorry.testing.builder import BuiltImage, build_image

INVALID, NOT_FOUND, INTEGRITY, UNSUPPORTED = 2, 3, 4, 7


class Tree:
    """The files under a directory, with their bytes, to compare before and after."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = {
            p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
        }
        self.names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))

    def same(self) -> bool:
        return Tree(self.root).files == self.files


def lorry(tmp: Path, *args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lorry", "--root", str(root or tmp / "store"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def fails(proc: subprocess.CompletedProcess[str], code: int, *names: object) -> str:
    """Assert the one-line error; return it."""
    err = proc.stderr
    assert "Traceback" not in err, err
    assert proc.returncode == code, (proc.returncode, err)
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("lorry: error: "), err
    for name in names:
        assert str(name) in err, (name, err)
    assert proc.stdout == "", proc.stdout
    return err


def copy(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return lorry(tmp, "copy", "-q", *args)


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bad-input")


@pytest.fixture(scope="module")
def image(work: Path) -> BuiltImage:
    """A one-platform OCI image of two layers, in a layout tagged v1 (read-only)."""
    return build_image(work / "src", layers=2, seed=801, tag="v1")


@pytest.fixture(scope="module")
def multi(work: Path) -> BuiltImage:
    """A two-platform OCI index in a layout tagged v1 (read-only)."""
    return build_image(
        work / "multi", layers=1, seed=802, platforms=["linux/amd64", "linux/arm64/v8"], tag="v1"
    )


@pytest.fixture(scope="module")
def archives(work: Path, image: BuiltImage) -> dict[str, Path]:
    """Good archives of ``image`` that lorry wrote: ``oci-archive`` and ``docker-archive``."""
    out = {
        "oci-archive": work / "good-oci.tar",
        "docker-archive": work / "good-docker.tar",
    }
    for kind, path in out.items():
        ref = "v1" if kind == "oci-archive" else "bad/input:v1"
        done = copy(work, f"oci:{image.layout}:v1", f"{kind}:{path}:{ref}")
        assert done.returncode == 0, done.stderr
    return out


def _copy_layout(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _corrupt(built: BuiltImage, layout: Path, layer: int = 1) -> Path:
    """Flip one byte of a layer blob of ``layout`` (a copy of ``built``); return the blob file."""
    blob = layout / "blobs" / "sha256" / built.layer_digests[layer].encoded
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    return blob


def _truncated(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


# -- (a) unknown transport -----------------------------------------------------------------------


def test_an_unknown_transport_is_named(tmp_path: Path, image: BuiltImage) -> None:
    fails(copy(tmp_path, "foo:/x", f"oci:{tmp_path / 'out'}:x"), INVALID, "foo:/x", "'foo'")
    fails(copy(tmp_path, f"oci:{image.layout}:v1", "foo:/x"), INVALID, "foo:/x", "'foo'")
    assert not (tmp_path / "out").exists()


# -- (b) not a layout, not an archive ------------------------------------------------------------


def test_a_directory_that_is_not_a_layout_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    fails(copy(tmp_path, f"oci:{empty}", f"oci:{tmp_path / 'out'}:x"), INVALID, empty)
    fails(copy(tmp_path, f"oci:{tmp_path / 'nope'}", f"oci:{tmp_path / 'out'}:x"), NOT_FOUND)
    assert not (tmp_path / "out").exists()
    assert not any(empty.iterdir())


@pytest.mark.parametrize("kind", ["oci-archive", "docker-archive"])
def test_a_text_file_is_not_an_archive(tmp_path: Path, kind: str) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a tar file\n" * 40)
    fails(copy(tmp_path, f"{kind}:{text}", f"oci:{tmp_path / 'out'}:x"), INVALID, text)
    assert not (tmp_path / "out").exists()
    if kind == "docker-archive":
        fails(lorry(tmp_path, "load", "-i", str(text)), INVALID, text)


def test_a_text_file_is_refused_as_a_layout_to_write_into(
    tmp_path: Path, image: BuiltImage
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("mine\n")
    fails(copy(tmp_path, f"oci:{image.layout}:v1", f"oci:{text}:x"), INVALID, text)
    assert text.read_text() == "mine\n"


# -- (c) broken index.json ---------------------------------------------------------------------


def test_a_broken_index_json_is_named_as_source_and_destination(
    tmp_path: Path, image: BuiltImage
) -> None:
    broken = _copy_layout(image.layout, tmp_path / "broken")
    (broken / "index.json").write_text('{"schemaVersion": 2, "manifests": [')
    index = broken / "index.json"
    fails(copy(tmp_path, f"oci:{broken}:v1", f"oci:{tmp_path / 'out'}:x"), INVALID, index)
    assert not (tmp_path / "out").exists()
    before = Tree(broken)
    other = build_image(tmp_path / "other", layers=1, seed=803, tag="v2")
    fails(copy(tmp_path, f"oci:{other.layout}:v2", f"oci:{broken}:v2"), INVALID, index)
    assert before.same() and Tree(broken).names == before.names


def test_an_index_entry_that_is_not_a_descriptor_is_named(
    tmp_path: Path, image: BuiltImage
) -> None:
    bad = _copy_layout(image.layout, tmp_path / "bad")
    (bad / "index.json").write_text('{"schemaVersion": 2, "manifests": [{"digest": 7}]}')
    fails(copy(tmp_path, f"oci:{bad}", f"oci:{tmp_path / 'out'}:x"), INVALID, bad)
    assert not (tmp_path / "out").exists()


# -- (d) docker-archive naming a missing layer ---------------------------------------------------


def test_a_docker_archive_naming_a_missing_layer(
    tmp_path: Path, image: BuiltImage, archives: dict[str, Path]
) -> None:
    missing = f"blobs/sha256/{image.layer_digests[0].encoded}"
    bad = tmp_path / "missing-layer.tar"
    with tarfile.open(archives["docker-archive"]) as src, tarfile.open(bad, "w") as dst:
        for member in src:
            if member.name != missing:
                dst.addfile(member, src.extractfile(member) if member.isreg() else None)
    out = tmp_path / "out"
    fails(copy(tmp_path, f"docker-archive:{bad}", f"oci:{out}:x"), INVALID, bad, missing)
    assert not out.exists()
    fails(lorry(tmp_path, "load", "-i", str(bad)), INVALID, bad, missing)


# -- (e) one reference, several images ---------------------------------------------------------


def test_a_reference_that_names_several_images(tmp_path: Path, image: BuiltImage) -> None:
    twice = _copy_layout(image.layout, tmp_path / "twice")
    index = json.loads((twice / "index.json").read_bytes())
    (entry,) = index["manifests"]
    second = dict(entry, annotations=dict(entry["annotations"]))
    index["manifests"] = [entry, second]
    (twice / "index.json").write_text(json.dumps(index))
    out = tmp_path / "out"
    err = fails(copy(tmp_path, f"oci:{twice}:v1", f"oci:{out}:x"), INVALID, twice, "'v1'")
    assert "2 images" in err
    err = fails(copy(tmp_path, f"oci:{twice}", f"oci:{out}:x"), INVALID, twice)
    assert "2 images" in err
    assert not out.exists()


# -- (f) truncated archives --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["oci-archive", "docker-archive"])
@pytest.mark.parametrize("fraction", [0.3, 0.6])
def test_a_truncated_archive_is_named(
    tmp_path: Path, archives: dict[str, Path], kind: str, fraction: float
) -> None:
    cut = _truncated(archives[kind], tmp_path / "cut.tar", fraction)
    out = tmp_path / "out"
    fails(copy(tmp_path, f"{kind}:{cut}", f"oci:{out}:x"), INVALID, cut)
    assert not out.exists()
    fails(copy(tmp_path, f"{kind}:{cut}", f"docker-archive:{tmp_path / 'o.tar'}"), INVALID, cut)
    # nothing else, no store either: neither side is lorry:
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.tar"]
    if kind == "docker-archive":
        fails(lorry(tmp_path, "load", "-i", str(cut)), INVALID, cut)


# -- (g) a blob whose bytes do not match its name ----------------------------------------------


def test_a_damaged_source_blob_leaves_the_destination_index_as_it_was(
    tmp_path: Path, image: BuiltImage
) -> None:
    damaged = _copy_layout(image.layout, tmp_path / "damaged")
    blob = _corrupt(image, damaged)
    dest = tmp_path / "dest"
    other = build_image(tmp_path / "other", layers=1, seed=804, tag="y")
    assert copy(tmp_path, f"oci:{other.layout}:y", f"oci:{dest}:y").returncode == 0
    index = (dest / "index.json").read_bytes()
    fails(copy(tmp_path, f"oci:{damaged}:v1", f"oci:{dest}:x"), INTEGRITY, blob)
    assert (dest / "index.json").read_bytes() == index
    assert not (dest / "blobs" / "sha256" / image.layer_digests[1].encoded).exists()
    # The damaged blob's bytes were dropped (other blobs' partial data may stay, resumable).
    assert not (
        dest / ".lorry-ingest" / "sha256" / f"{image.layer_digests[1].encoded}.data"
    ).exists()
    # y is still whole: lorry copies it on to a fresh layout.
    again = copy(tmp_path, f"oci:{dest}:y", f"oci:{tmp_path / 'again'}:y")
    assert again.returncode == 0 and again.stdout.strip() == str(other.manifest_digest)


# -- (h) an archive that fails midway ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["docker-archive", "oci-archive"])
def test_an_archive_that_fails_midway_is_not_written(
    tmp_path: Path, image: BuiltImage, archives: dict[str, Path], kind: str
) -> None:
    damaged = _copy_layout(image.layout, tmp_path / "damaged")
    blob = _corrupt(image, damaged)
    out = tmp_path / "out" / "OUT.tar"
    out.parent.mkdir()
    fails(copy(tmp_path, f"oci:{damaged}:v1", f"{kind}:{out}"), INTEGRITY, blob)
    assert not any(out.parent.iterdir())  # no archive, no temporary tar, no staging
    # A good archive already at OUT.tar stays byte-identical.
    shutil.copyfile(archives[kind], out)
    before = out.read_bytes()
    fails(copy(tmp_path, f"oci:{damaged}:v1", f"{kind}:{out}"), INTEGRITY, blob)
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["OUT.tar"]  # no staging left


# -- (i) planning failures leave no directory -----------------------------------------------


def _planning_failures(built: BuiltImage) -> list[tuple[list[str], int, str]]:
    src = f"oci:{built.layout}:v1"
    return [
        (
            ["--preserve-digests", "--platform", "linux/amd64", "--platform", "linux/arm64", src],
            UNSUPPORTED,
            "--preserve-digests",
        ),
        (["--platform", "linux/s390x", src], NOT_FOUND, "linux/s390x"),
        (["--preserve-digests", src], UNSUPPORTED, "--preserve-digests"),
        (["--platform", "linux//", src], INVALID, "linux//"),
        ([f"oci:{built.layout}:nope"], NOT_FOUND, "'nope'"),
    ]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("kind", ["oci", "oci-archive", "docker-archive"])
def test_a_copy_that_fails_at_planning_creates_nothing(
    tmp_path: Path, multi: BuiltImage, kind: str, case: int
) -> None:
    args, code, named = _planning_failures(multi)[case]
    target = tmp_path / "a" / "b" / ("NEWDIR" if kind == "oci" else "NEW.tar")
    if kind != "oci":
        target.parent.mkdir(parents=True)
    fails(copy(tmp_path, *args, f"{kind}:{target}:x"), code, named)
    if kind == "oci":
        assert not (tmp_path / "a").exists()
    else:
        assert not any(target.parent.iterdir())
    if kind == "oci":  # an empty directory made beforehand stays empty
        target.mkdir(parents=True)
        fails(copy(tmp_path, *args, f"oci:{target}:x"), code, named)
        assert not any(target.iterdir())


def test_a_layout_missing_its_manifest_blob_is_named(tmp_path: Path, image: BuiltImage) -> None:
    lone = _copy_layout(image.layout, tmp_path / "lone")
    (lone / "blobs" / "sha256" / image.manifest_digest.encoded).unlink()
    fails(copy(tmp_path, f"oci:{lone}:v1", f"oci:{tmp_path / 'out'}:x"), NOT_FOUND, lone)
    assert not (tmp_path / "out").exists()
