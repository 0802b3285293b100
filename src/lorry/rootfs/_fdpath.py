"""Resolve layer entry names from a directory descriptor without ever following a symlink."""

from __future__ import annotations

import os
import stat

from lorry.errors import InvalidInputError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_name(name: str, what: str) -> list[str]:
    """A tar name as root-relative components; refuse ``..`` and NUL (path escape)."""
    if "\0" in name:
        raise InvalidInputError(f"{what}: NUL byte in name {name!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidInputError(f"{what}: '..' in name {name!r}")
    return parts


def open_dir(root_fd: int, parts: list[str], what: str, *, create: bool) -> int | None:
    """An fd of the directory ``parts`` under root, creating missing ones when ``create``.

    A symlink or non-directory on the way is refused; None when missing and not ``create``.
    """
    fd = os.dup(root_fd)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    return None
                os.mkdir(part, 0o700, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except (NotADirectoryError, OSError) as exc:
                st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                kind = "symlink" if stat.S_ISLNK(st.st_mode) else "non-directory"
                raise InvalidInputError(f"{what}: path goes through a {kind} at {part!r}") from exc
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """lstat relative to ``dir_fd``; None when absent."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` (a tree too) under ``dir_fd``; never follows a symlink."""
    st = lstat_at(dir_fd, name)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    sub = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        os.fchmod(sub, 0o700)
        for child in os.listdir(sub):
            remove_at(sub, child)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=dir_fd)
