"""A layer applied from compressed chunks, its DiffID hashed in the same pass."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry.compression import compress_chunks
from lorry.digest import DiffID, Digest
from lorry.errors import IntegrityError
from lorry.rootfs.apply import Tree
from lorry.rootfs.stream import LayerReader, apply_layer
from lorry.testing.evil_layers import layer_tar


def _diff_id(data: bytes) -> DiffID:
    return DiffID(Digest("sha256", hashlib.sha256(data).hexdigest()))


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_apply_and_verify(tmp_path: Path, kind: str) -> None:
    tar = layer_tar([("f", "big", b"z" * 3_000_000), ("f", "a/b", b"1")])
    blob = b"".join(compress_chunks(iter([tar]), kind))  # type: ignore[arg-type]
    chunks = iter([blob[i : i + 7000] for i in range(0, len(blob), 7000)])
    tree = Tree(str(tmp_path))
    reader = LayerReader(chunks, kind, "layer 0")  # type: ignore[arg-type]
    assert apply_layer(tree, reader, "layer 0") == (_diff_id(tar), len(tar))
    assert (tmp_path / "big").read_bytes() == b"z" * 3_000_000


def test_the_diff_id_covers_the_padding_after_the_tar(tmp_path: Path) -> None:
    tar = layer_tar([("f", "a", b"1")]) + b"\0" * 8192  # blocks past the end-of-archive marker
    reader = LayerReader(iter([tar]), "none", "layer 0")
    assert apply_layer(Tree(str(tmp_path)), reader, "layer 0") == (_diff_id(tar), len(tar))


def test_truncated_gzip_is_an_error(tmp_path: Path) -> None:
    tar = layer_tar([("f", "a", b"1" * 100_000)])
    blob = b"".join(compress_chunks(iter([tar]), "gzip"))
    with pytest.raises(IntegrityError):
        reader = LayerReader(iter([blob[: len(blob) // 2]]), "gzip", "l")
        apply_layer(Tree(str(tmp_path)), reader, "l")


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_read_ahead_gives_the_same_tree_and_diff_id(tmp_path: Path, kind: str) -> None:
    tar = layer_tar([("f", "big", b"q" * 5_000_000), ("d", "d", ""), ("f", "d/x", b"1")])
    blob = b"".join(compress_chunks(iter([tar]), kind))  # type: ignore[arg-type]
    chunks = [blob[i : i + 64_000] for i in range(0, len(blob), 64_000)]
    seen: list[int] = []
    reader = LayerReader(iter(chunks), kind, "l", ahead=2, on_chunk=lambda: seen.append(1))  # type: ignore[arg-type]
    assert apply_layer(Tree(str(tmp_path)), reader, "l") == (_diff_id(tar), len(tar))
    assert (tmp_path / "big").read_bytes() == b"q" * 5_000_000 and seen


def test_read_ahead_raises_the_stream_error_in_order(tmp_path: Path) -> None:
    tar = layer_tar([("f", "a", b"1" * 100_000)])
    blob = b"".join(compress_chunks(iter([tar]), "gzip"))
    reader = LayerReader(iter([blob[: len(blob) // 2]]), "gzip", "l", ahead=2)
    with pytest.raises(IntegrityError):
        apply_layer(Tree(str(tmp_path)), reader, "l")


def test_closing_a_half_read_reader_stops_its_thread() -> None:
    released: list[bool] = []

    def endless() -> Iterator[bytes]:
        try:
            while True:
                yield b"\0" * 65536
        finally:
            released.append(True)

    reader = LayerReader(endless(), "none", "half-read", ahead=2)
    assert len(reader.read(1000)) == 1000
    assert [t for t in threading.enumerate() if t.name == "inflate half-read"]
    reader.close()
    reader.close()  # twice is fine
    assert released == [True]  # the source was closed: its file would be let go
    assert not [t for t in threading.enumerate() if t.name == "inflate half-read"]
