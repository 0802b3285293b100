"""A file's mode is the layer's, whatever the umask or a default ACL, with or without an fchmod."""

from __future__ import annotations

import io
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry.rootfs.apply import Tree, process_umask
from lorry.testing.evil_layers import layer_tar

_MODES = ["f644", "f755", "f600", "f400", "f000", "f777", "f4755", "f2755", "f1755", "f666"]


@pytest.fixture
def umask() -> Iterator[int]:
    """The test's own umask, restored after (a single-threaded test; nothing else creates)."""
    old = os.umask(0o022)
    os.umask(old)
    yield old
    os.umask(old)


def _apply(root: Path) -> dict[str, int]:
    tar = layer_tar([(kind, kind, b"") for kind in _MODES])
    Tree(str(root)).apply(io.BytesIO(tar), "layer 0")
    return {kind: stat.S_IMODE((root / kind).lstat().st_mode) for kind in _MODES}


def _expected() -> dict[str, int]:
    return {kind: int(kind[1:], 8) for kind in _MODES}


def test_the_umask_is_read_without_changing_it(umask: int) -> None:
    for value in (0o022, 0o077, 0o002):
        os.umask(value)
        assert process_umask() == value
        assert os.umask(value) == value


@pytest.mark.parametrize("value", [0o022, 0o077, 0o000, 0o777])
def test_modes_are_the_layers_under_any_umask(tmp_path: Path, umask: int, value: int) -> None:
    os.umask(value)
    assert _apply(tmp_path) == _expected()


def test_a_default_acl_on_dir_does_not_mask_the_modes(tmp_path: Path) -> None:
    # A default ACL of u::rwx g::--- o::--- (version 2; tags USER_OBJ, GROUP_OBJ, OTHER): new
    # files inside get their group and other bits masked off, whatever the umask says.
    acl = struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", tag, perm, 0xFFFFFFFF) for tag, perm in ((1, 7), (4, 0), (0x20, 0))
    )
    try:
        os.setxattr(tmp_path, "system.posix_acl_default", acl)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs on {tmp_path}'s filesystem: {exc.strerror}")
    probe = tmp_path / "probe"
    probe.touch(0o644)
    assert stat.S_IMODE(probe.stat().st_mode) == 0o600  # the ACL masks, as it would lorry's
    probe.unlink()
    assert _apply(tmp_path) == _expected()
