"""Every evil/tricky layer case applied in a sandbox with sentinels planted around DIR."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from lorry.errors import LorryError
from lorry.rootfs.apply import Limits, Tree
from lorry.testing.evil_layers import Case, cases, layer_tar, tree_of


def _walk(root: Path) -> dict[str, tuple[str, bytes | str]]:
    out: dict[str, tuple[str, bytes | str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("l", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("d", "")
            elif stat.S_ISFIFO(st.st_mode):
                out[rel] = ("p", "")
            else:
                out[rel] = ("f", p.read_bytes())
    return out


def _sandbox(tmp_path: Path) -> tuple[Path, dict[str, tuple[str, bytes | str]]]:
    (tmp_path / "outside").write_bytes(b"sentinel")
    (tmp_path / "x").write_bytes(b"sentinel-x")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_bytes(b"root")
    dest = tmp_path / "a" / "b" / "dir"
    dest.mkdir(parents=True)
    (tmp_path / "a" / "x").write_bytes(b"sentinel-ax")
    return dest, _walk(tmp_path)


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_case(tmp_path: Path, case: Case) -> None:
    dest, before = _sandbox(tmp_path)
    tree = Tree(str(dest))
    if case.error is not None:
        with pytest.raises(LorryError, match=case.error):
            for i, data in enumerate(tree_of(case.layers)):
                tree.apply(io.BytesIO(data), f"layer {i}")
            tree.finish()
    else:
        for i, data in enumerate(tree_of(case.layers)):
            tree.apply(io.BytesIO(data), f"layer {i}")
        tree.finish()
        assert _walk(dest) == case.tree
        for rel, mode in case.modes.items():
            assert stat.S_IMODE((dest / rel).lstat().st_mode) == mode
    after = {k: v for k, v in _walk(tmp_path).items() if not k.startswith("a/b/dir/")}
    assert after == before


def test_at_least_sixty_cases() -> None:
    assert len(cases()) >= 60


def test_entry_limit(tmp_path: Path) -> None:
    data = layer_tar([("f", f"f{i}", b"") for i in range(20)])
    with pytest.raises(LorryError, match="more than 10 entries"):
        Tree(str(tmp_path), Limits(max_entries=10)).apply(io.BytesIO(data), "layer 0")


def test_huge_pax_header_refused(tmp_path: Path) -> None:
    data = layer_tar([("f", "p" * 5000, b"1")])  # long name: a PAX header
    with pytest.raises(LorryError, match="too large"):
        Tree(str(tmp_path), Limits(max_header=512)).apply(io.BytesIO(data), "layer 0")


def test_later_layer_adds_to_existing_dir(tmp_path: Path) -> None:
    data = layer_tar([("d", "ro", ""), ("f", "ro/x", b"1")])
    tree = Tree(str(tmp_path))
    tree.apply(io.BytesIO(data), "layer 0")
    tree.apply(io.BytesIO(layer_tar([("f", "ro/y", b"2")])), "layer 1")
    tree.finish()
    assert sorted(os.listdir(tmp_path / "ro")) == ["x", "y"]
