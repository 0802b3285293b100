"""What the unpack tests share: the CLI in-process, an image stored by copy, a tree's picture."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.testing.builder import BuiltImage


def lorry(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``lorry --root ROOT ARGS``: exit code, stdout, stderr."""
    code = run(["--root", str(root), *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def stored(built: BuiltImage, root: Path, capsys: pytest.CaptureFixture[str], name: str) -> str:
    """Copy ``built`` into the store at ``root`` as ``unpack.test/NAME:v1``; return that name."""
    ref = f"unpack.test/{name}:v1"
    code, _, err = lorry(root, capsys, "copy", f"oci:{built.layout}:{built.tag}", f"lorry:{ref}")
    assert code == 0, err
    return ref


def tree(top: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``top``: type, permission bits, link target or content, link identity."""
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirs, files in os.walk(top):
        for name in [*dirs, *files]:
            path = Path(dirpath, name)
            rel = str(path.relative_to(top))
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                body: object = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                body = path.read_bytes()
                if st.st_nlink > 1:  # hard links: the first name seen stands for the inode
                    body = (inodes.setdefault(st.st_ino, rel), body)
            else:
                body = None
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), body)
    return out
