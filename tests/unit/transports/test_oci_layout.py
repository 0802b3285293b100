"""The oci: and oci-archive: transports: reading, verified resumable writing, commit and abort."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, InvalidInputError, NotFoundError
from lorry.oci import Descriptor, Index, Manifest, parse_manifest
from lorry.store.locks import FileLock
from lorry.testing.builder import BuiltImage, LayerSpec, build_image
from lorry.testing.skopeo import SKOPEO_BINARY, skopeo_copy
from lorry.transports.oci_archive import OciArchiveDestination, OciArchiveSource
from lorry.transports.oci_layout import (
    INGEST_DIR,
    REF_NAME,
    OciLayoutDestination,
    OciLayoutSource,
)
from lorry.transports.protocols import ImageDestination, ImageSource

SMALL = [LayerSpec(files=5, size=8 * 1024), LayerSpec(files=3, size=4 * 1024)]


def _build(path: Path, *, seed: int = 0, tag: str = "latest", **kw: object) -> BuiltImage:
    return build_image(path, layers=SMALL, seed=seed, tag=tag, **kw)  # type: ignore[arg-type]


def _read(stream_src: ImageSource, desc: Descriptor, offset: int = 0) -> bytes:
    stream = stream_src.open_blob(desc, offset)
    try:
        return b"".join(stream)
    finally:
        stream.close()


def copy_image(src: ImageSource, dst: ImageDestination) -> Digest:
    """A tiny copy engine: blobs, then child manifests, then the top document; commit."""
    raw, media_type, digest = src.get_manifest()
    top = parse_manifest(raw, media_type)
    children: list[tuple[bytes, str, Digest]] = []
    manifests: list[Manifest] = []
    if isinstance(top, Index):
        for child in top.manifests:
            craw, ctype, cdigest = src.get_manifest(child.digest)
            assert cdigest == child.digest
            doc = parse_manifest(craw, ctype)
            assert isinstance(doc, Manifest)
            manifests.append(doc)
            children.append((craw, ctype, cdigest))
    else:
        assert isinstance(top, Manifest)
        manifests.append(top)
    for m in manifests:
        for desc in [*m.layers, m.config]:
            if dst.reuse_blob(desc):
                continue

            def open_at(offset: int, desc: Descriptor = desc) -> Iterator[bytes]:
                stream = src.open_blob(desc, offset)
                try:
                    yield from stream
                finally:
                    stream.close()

            dst.put_blob(desc, open_at)
    for craw, ctype, cdigest in children:
        dst.put_manifest(craw, ctype, cdigest)
    dst.put_manifest(raw, media_type, digest, top=True)
    dst.commit()
    return digest


def _blobs(layout: Path) -> dict[str, bytes]:
    return {
        f"{p.parent.name}:{p.name}": p.read_bytes()
        for p in (layout / "blobs").glob("*/*")
        if p.is_file()
    }


def _index(layout: Path) -> list[dict[str, object]]:
    obj = json.loads((layout / "index.json").read_bytes())
    assert obj["schemaVersion"] == 2
    manifests: list[dict[str, object]] = obj["manifests"]
    return manifests


# --- source ---------------------------------------------------------------------------------


def test_source_reads_manifest_by_ref_and_by_digest(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    src = OciLayoutSource(built.layout, "latest", "oci:src:latest")
    raw, media_type, digest = src.get_manifest()
    assert raw == built.manifest_bytes
    assert media_type == mt.OCI_MANIFEST
    assert digest == built.manifest_digest
    assert src.get_manifest(built.manifest_digest) == (raw, media_type, digest)
    with pytest.raises(InvalidInputError, match="not a manifest"):
        src.get_manifest(built.config_digest)
    # No reference and one entry: that entry.
    assert OciLayoutSource(built.layout, None, "oci:src").get_manifest()[2] == digest
    with pytest.raises(NotFoundError, match="nosuch"):
        OciLayoutSource(built.layout, "nosuch", "x").get_manifest()
    src.close()


def test_source_index_entry_and_children(tmp_path: Path) -> None:
    built = _build(tmp_path / "src", platforms=["linux/amd64", "linux/arm64/v8"])
    src = OciLayoutSource(built.layout, "latest", "x")
    raw, media_type, digest = src.get_manifest()
    assert (raw, media_type, digest) == (built.index_bytes, mt.OCI_INDEX, built.index_digest)
    child = built.children[1]
    assert src.get_manifest(child.manifest_digest) == (
        child.manifest_bytes,
        mt.OCI_MANIFEST,
        child.manifest_digest,
    )


def test_open_blob_from_offset_and_missing(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    src = OciLayoutSource(built.layout, None, "x")
    data = built.blob_path(built.layer_digests[0]).read_bytes()
    desc = Descriptor(built.layer_media_type, built.layer_digests[0], len(data))
    assert _read(src, desc) == data
    assert _read(src, desc, 10) == data[10:]
    gone = Descriptor(mt.OCI_LAYER, Digest.of(b"nope"), 4)
    with pytest.raises(NotFoundError, match=gone.digest.encoded):
        src.open_blob(gone)


def test_ambiguous_ref_and_several_entries(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    _build(tmp_path / "src", seed=1, tag="other")
    with pytest.raises(InvalidInputError, match=re.escape(str(built.layout))):
        OciLayoutSource(built.layout, None, "x").get_manifest()
    index_path = built.layout / "index.json"
    obj = json.loads(index_path.read_bytes())
    obj["manifests"].append(dict(obj["manifests"][0]))  # two entries named "latest"
    index_path.write_text(json.dumps(obj))
    with pytest.raises(InvalidInputError, match="'latest'") as info:
        OciLayoutSource(built.layout, "latest", "x").get_manifest()
    assert str(built.layout) in str(info.value)
    assert OciLayoutSource(built.layout, "other", "x").get_manifest()[0]


def test_broken_index_and_not_a_layout(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    (built.layout / "index.json").write_text("{broken")
    with pytest.raises(InvalidInputError, match=r"index\.json"):
        OciLayoutSource(built.layout, None, "x")
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(InvalidInputError, match="oci-layout"):
        OciLayoutSource(plain, None, "x")
    (plain / "oci-layout").write_text('{"something": 1}')
    with pytest.raises(InvalidInputError, match="imageLayoutVersion"):
        OciLayoutSource(plain, None, "x")
    (plain / "oci-layout").unlink()
    (plain / "junk.txt").write_text("hello")
    with pytest.raises(InvalidInputError, match="not empty"):
        OciLayoutDestination(plain, "latest", "x")
    assert sorted(p.name for p in plain.iterdir()) == ["junk.txt"]


# --- destination ----------------------------------------------------------------------------


def test_copy_into_new_layout(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    dest = tmp_path / "dest"
    dst = OciLayoutDestination(dest, "latest", "oci:dest:latest")
    assert dst.properties.accepts_index
    assert mt.DOCKER_MANIFEST_V2 in dst.properties.manifest_types
    assert dst.properties.reuse == frozenset({"present"})
    digest = copy_image(OciLayoutSource(built.layout, "latest", "x"), dst)
    assert digest == built.manifest_digest
    assert _blobs(dest) == _blobs(built.layout)
    assert _index(dest) == _index(built.layout)
    assert json.loads((dest / "oci-layout").read_bytes())["imageLayoutVersion"]
    assert not (dest / INGEST_DIR).exists()
    # A second copy reuses every blob.
    dst2 = OciLayoutDestination(dest, "latest", "x")
    m = Manifest.parse(built.manifest_bytes)
    assert all(dst2.reuse_blob(d) for d in [*m.layers, m.config])


def test_copy_multi_platform_index(tmp_path: Path) -> None:
    built = _build(tmp_path / "src", platforms=["linux/amd64", "linux/arm64/v8"])
    dest = tmp_path / "dest"
    copy_image(OciLayoutSource(built.layout, None, "x"), OciLayoutDestination(dest, "v1", "x"))
    assert _blobs(dest) == _blobs(built.layout)
    [entry] = _index(dest)
    assert entry["digest"] == str(built.index_digest)
    assert entry["mediaType"] == mt.OCI_INDEX
    assert entry["annotations"] == {REF_NAME: "v1"}


def test_second_image_keeps_first_entry_and_retag_replaces(tmp_path: Path) -> None:
    one = _build(tmp_path / "one", seed=1)
    two = _build(tmp_path / "two", seed=2)
    dest = tmp_path / "dest"
    copy_image(OciLayoutSource(one.layout, None, "x"), OciLayoutDestination(dest, "a", "x"))
    copy_image(OciLayoutSource(two.layout, None, "x"), OciLayoutDestination(dest, "b", "x"))
    names = {e["annotations"][REF_NAME]: e["digest"] for e in _index(dest)}  # type: ignore[index]
    assert names == {"a": str(one.manifest_digest), "b": str(two.manifest_digest)}
    # Re-pointing "a" at the second image replaces its entry only.
    copy_image(OciLayoutSource(two.layout, None, "x"), OciLayoutDestination(dest, "a", "x"))
    names = {e["annotations"][REF_NAME]: e["digest"] for e in _index(dest)}  # type: ignore[index]
    assert names == {"a": str(two.manifest_digest), "b": str(two.manifest_digest)}
    assert OciLayoutSource(dest, "a", "x").get_manifest()[0] == two.manifest_bytes
    # No reference: an unnamed entry.
    copy_image(OciLayoutSource(one.layout, None, "x"), OciLayoutDestination(dest, None, "x"))
    assert len(_index(dest)) == 3
    assert "annotations" not in _index(dest)[-1]


def test_resumed_put_blob_starts_at_partial_offset(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    data = built.blob_path(built.layer_digests[0]).read_bytes()
    desc = Descriptor(built.layer_media_type, built.layer_digests[0], len(data))
    dest = tmp_path / "dest"
    dst = OciLayoutDestination(dest, "latest", "x")
    partial = dest / INGEST_DIR / "sha256" / f"{desc.digest.encoded}.data"
    partial.parent.mkdir(parents=True)
    n = len(data) // 3
    partial.write_bytes(data[:n])
    offsets: list[int] = []

    def open_at(offset: int) -> Iterator[bytes]:
        offsets.append(offset)
        yield data[offset : offset + 100]
        yield data[offset + 100 :]

    dst.put_blob(desc, open_at)
    assert offsets == [n]
    assert (dest / "blobs" / "sha256" / desc.digest.encoded).read_bytes() == data
    assert not partial.exists()
    dst.abort()  # empty partial-data directories go at the end of the copy
    assert not (dest / INGEST_DIR).exists()


def test_interrupted_put_blob_keeps_partial_for_resume(tmp_path: Path) -> None:
    data = b"x" * 5000 + b"y" * 5000
    desc = Descriptor(mt.OCI_LAYER, Digest.of(data), len(data))
    dest = tmp_path / "dest"
    dst = OciLayoutDestination(dest, "latest", "x")

    class CutError(Exception):
        pass

    def failing(offset: int) -> Iterator[bytes]:
        yield data[offset:4000]
        raise CutError

    with pytest.raises(CutError):
        dst.put_blob(desc, failing)
    assert not dst.reuse_blob(desc)
    offsets: list[int] = []

    def rest(offset: int) -> Iterator[bytes]:
        offsets.append(offset)
        yield data[offset:]

    dst.put_blob(desc, rest)
    assert offsets == [4000]
    assert dst.reuse_blob(desc)


def test_corrupt_source_blob_raises_and_leaves_no_blob(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    path = built.blob_path(built.layer_digests[0])
    data = bytearray(path.read_bytes())
    desc = Descriptor(built.layer_media_type, built.layer_digests[0], len(data))
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    src = OciLayoutSource(built.layout, None, "x")
    dest = tmp_path / "dest"
    dst = OciLayoutDestination(dest, "latest", "x")

    def open_at(offset: int) -> Iterator[bytes]:
        yield from src.open_blob(desc, offset)

    with pytest.raises(IntegrityError, match="digest mismatch"):
        dst.put_blob(desc, open_at)
    assert not (dest / "blobs" / "sha256" / desc.digest.encoded).exists()
    assert not list((dest / INGEST_DIR).rglob("*.data"))  # the bad partial data is gone
    # Too long a stream fails as it arrives.
    with pytest.raises(IntegrityError, match="size mismatch"):
        dst.put_blob(desc, lambda offset: iter([bytes(data), b"more"]))
    assert not dst.reuse_blob(desc)


def test_put_manifest_checks_digest(tmp_path: Path) -> None:
    dst = OciLayoutDestination(tmp_path / "dest", "latest", "x")
    with pytest.raises(IntegrityError):
        dst.put_manifest(b"{}", mt.OCI_MANIFEST, Digest.of(b"other"), top=True)


def test_abort_leaves_index_unchanged(tmp_path: Path) -> None:
    one = _build(tmp_path / "one", seed=1)
    two = _build(tmp_path / "two", seed=2)
    dest = tmp_path / "dest"
    copy_image(OciLayoutSource(one.layout, None, "x"), OciLayoutDestination(dest, "a", "x"))
    before = (dest / "index.json").read_bytes()
    dst = OciLayoutDestination(dest, "a", "x")
    m = Manifest.parse(two.manifest_bytes)
    src = OciLayoutSource(two.layout, None, "x")
    for desc in [*m.layers, m.config]:

        def open_at(offset: int, d: Descriptor = desc) -> Iterator[bytes]:
            return iter(src.open_blob(d, offset))

        dst.put_blob(desc, open_at)
    dst.put_manifest(two.manifest_bytes, two.media_type, two.manifest_digest, top=True)
    dst.abort()
    dst.abort()  # idempotent
    assert (dest / "index.json").read_bytes() == before
    assert OciLayoutSource(dest, "a", "x").get_manifest()[2] == one.manifest_digest


def test_abort_of_fresh_layout_writes_no_index(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dst = OciLayoutDestination(dest, "a", "x")
    dst.abort()
    assert not (dest / "index.json").exists()


# --- oci-archive ----------------------------------------------------------------------------


def test_oci_archive_round_trip(tmp_path: Path) -> None:
    built = _build(tmp_path / "src", platforms=["linux/amd64", "linux/arm64/v8"])
    archive = tmp_path / "image.tar"
    copy_image(OciLayoutSource(built.layout, None, "x"), OciArchiveDestination(archive, "v1", "x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.tar", "src"]
    src = OciArchiveSource(archive, "v1", "oci-archive:image.tar:v1")
    raw, media_type, digest = src.get_manifest()
    assert (raw, media_type, digest) == (built.index_bytes, mt.OCI_INDEX, built.index_digest)
    back = tmp_path / "back"
    copy_image(src, OciLayoutDestination(back, "v1", "x"))
    src.close()
    src.close()
    assert _blobs(back) == _blobs(built.layout)


def test_oci_archive_abort_leaves_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"old")
    dst = OciArchiveDestination(archive, "v1", "x")
    dst.put_manifest(b"{}", mt.OCI_MANIFEST, Digest.of(b"{}"), top=True)
    dst.abort()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.tar"]
    assert archive.read_bytes() == b"old"


def test_truncated_and_unsafe_archive(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    archive = tmp_path / "image.tar"
    copy_image(OciLayoutSource(built.layout, None, "x"), OciArchiveDestination(archive, "a", "x"))
    data = archive.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2 + 7])
    with pytest.raises(InvalidInputError, match=re.escape(str(cut))):
        OciArchiveSource(cut, "a", "x")
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("../escape")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    with pytest.raises(InvalidInputError, match=re.escape(str(evil))):
        OciArchiveSource(evil, None, "x")
    link = tmp_path / "link.tar"
    with tarfile.open(link, "w") as tar:
        info = tarfile.TarInfo("blobs/sha256/x")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(InvalidInputError, match="not a regular file"):
        OciArchiveSource(link, None, "x")
    assert not (tmp_path / "escape").exists()


# --- interop with skopeo --------------------------------------------------------------------


@pytest.mark.skipif(shutil.which(SKOPEO_BINARY) is None, reason="skopeo is not installed")
def test_skopeo_reads_our_layout_and_we_read_skopeos(tmp_path: Path) -> None:
    built = _build(tmp_path / "src")
    ours = tmp_path / "ours"
    copy_image(OciLayoutSource(built.layout, None, "x"), OciLayoutDestination(ours, "t1", "x"))
    theirs = tmp_path / "theirs"
    skopeo_copy(f"oci:{ours}:t1", f"oci:{theirs}:t2", extra_args=["--preserve-digests"])
    src = OciLayoutSource(theirs, "t2", "x")
    raw, media_type, digest = src.get_manifest()
    assert (raw, media_type, digest) == (
        built.manifest_bytes,
        mt.OCI_MANIFEST,
        built.manifest_digest,
    )
    back = tmp_path / "back"
    copy_image(src, OciLayoutDestination(back, "t3", "x"))
    assert _blobs(back) == _blobs(built.layout)


def test_blobs_written_at_once_into_one_layout_do_not_trip_over_each_other(
    tmp_path: Path,
) -> None:
    # A copy writes several blobs at once; none may remove a directory another one needs.
    blobs = [bytes([i % 256]) * (1000 + i) for i in range(48)]
    descs = [Descriptor(mt.OCI_LAYER_GZIP, Digest.of(b), len(b)) for b in blobs]
    for round_ in range(20):
        dst = OciLayoutDestination(tmp_path / f"dest{round_}", "latest", "x")

        def put(i: int, dst: OciLayoutDestination = dst) -> None:
            dst.put_blob(descs[i], lambda _at: iter([blobs[i]]))

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, range(len(blobs))))
        assert all(dst.reuse_blob(d) for d in descs)


def test_a_lock_a_kill_left_behind_a_committed_blob_is_removed_by_the_next_copy(
    tmp_path: Path,
) -> None:
    built = _build(tmp_path / "src")
    dest = tmp_path / "dest"
    copy_image(OciLayoutSource(built.layout, None, "x"), OciLayoutDestination(dest, "a", "x"))
    # killed between a commit's rename and the lock file's unlink, in an earlier copy
    ingest = dest / INGEST_DIR / "sha256"
    ingest.mkdir(parents=True)
    left = ingest / f"{built.layer_digests[0].encoded}.lock"
    left.write_bytes(b"")
    # another copy's partial data of a blob not in the layout is kept for its resume
    other = Digest.of(b"a blob some other copy was writing")
    partial = ingest / f"{other.encoded}.data"
    partial.write_bytes(b"a blob some")
    copy_image(OciLayoutSource(built.layout, None, "x"), OciLayoutDestination(dest, "b", "x"))
    assert not left.exists()
    assert partial.read_bytes() == b"a blob some"
    partial.unlink()
    # a lock some live writer holds on a committed blob is left alone
    held = FileLock(ingest / f"{built.layer_digests[1].encoded}.lock")
    assert held.acquire(blocking=False)
    try:
        copy_image(OciLayoutSource(built.layout, None, "x"), OciLayoutDestination(dest, "c", "x"))
        assert held.path.exists()
    finally:
        held.release(unlink=True)
    copy_image(OciLayoutSource(built.layout, None, "x"), OciLayoutDestination(dest, "d", "x"))
    assert not (dest / INGEST_DIR).exists()
