"""Small crash-safe file helpers: fsync a directory, write a file atomically, name OS errors.

Every visible change in the store is a rename of a complete, fsynced file, followed by an fsync
of the directory that holds it, so a kill or a power cut leaves either the old or the new file.
OS errors are turned into :class:`StoreError` (or :class:`DiskFullError` for ENOSPC/EDQUOT)
naming the path, so nothing above the store sees a bare ``OSError``.
"""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

from lorry.errors import DiskFullError, StoreError

__all__ = ["atomic_write", "fsync_dir", "os_error", "size_or_zero", "tmp_name"]

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def os_error(exc: OSError, doing: str, path: Path | str) -> StoreError:
    """A store error for ``exc`` that says what was being done to which path."""
    if exc.errno in _FULL:
        return DiskFullError(f"{doing} {path}: no space left on device (local store full)")
    reason = exc.strerror or str(exc)
    return StoreError(f"{doing} {path}: {reason}")


def fsync_dir(path: Path) -> None:
    """Flush a directory entry change (a rename or unlink) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def tmp_name(path: Path) -> Path:
    """A temporary sibling name for ``path`` that is unique to this process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: write a temp file, fsync it, rename it, fsync the dir."""
    tmp = tmp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise os_error(exc, "writing", path) from exc


def size_or_zero(path: Path | str) -> int:
    """The file's size; 0 when it does not exist (what deleting it frees)."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0
