"""Apply layer tars in order to one directory, per OCI image-spec layer.md, never escaping it.

Every path is walked component by component from a directory descriptor with ``O_NOFOLLOW``
(``_fdpath``); ``..`` in any name, and a path through a symlink, refuse the layer. Directory
modes and mtimes are set once, after all layers, deepest first, so a read-only directory never
blocks a later write. Work is bounded by :class:`Limits`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from dataclasses import dataclass, field
from typing import IO, Any

from lorry.errors import IntegrityError, InvalidInputError
from lorry.rootfs._fdpath import lstat_at, open_dir, remove_at, split_name

__all__ = ["Limits", "Tree"]

_WH = ".wh."
_OPQ = ".wh..wh..opq"
_STEP = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Bounds on one layer: entries, and the size of a PAX / GNU long-name header."""

    max_entries: int = 2_000_000
    max_header: int = 1 << 20


class _BoundedInfo(tarfile.TarInfo):
    """A TarInfo that refuses oversized extended headers before reading them (memory bomb)."""

    max_header = Limits().max_header

    def _proc_pax(self, tarfile: Any) -> Any:
        self._check()
        return super()._proc_pax(tarfile)  # type: ignore[misc]

    def _proc_gnulong(self, tarfile: Any) -> Any:
        self._check()
        return super()._proc_gnulong(tarfile)  # type: ignore[misc]

    def _check(self) -> None:
        if self.size > self.max_header:
            raise IntegrityError(f"tar extended header of {self.size} bytes is too large")


@dataclass
class Tree:
    """One root filesystem being built in ``root``; call :meth:`apply` per layer, then finish."""

    root: str
    limits: Limits = field(default_factory=Limits)
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    warnings: list[str] = field(default_factory=list)
    _dirs: dict[tuple[str, ...], tuple[int, float]] = field(default_factory=dict)

    def apply(self, stream: IO[bytes], what: str) -> int:
        """Apply one uncompressed layer tar; return its entry count. Errors name layer + entry."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        _BoundedInfo.max_header = self.limits.max_header
        made: set[tuple[str, ...]] = set()
        skipped_devices = 0
        count = 0
        try:
            with tarfile.open(fileobj=stream, mode="r|", tarinfo=_BoundedInfo) as tar:
                for member in tar:
                    count += 1
                    if count > self.limits.max_entries:
                        raise IntegrityError(f"{what}: more than {self.limits.max_entries} entries")
                    tar.members.clear()  # type: ignore[attr-defined]
                    where = f"{what}: entry {member.name!r}"
                    if (member.ischr() or member.isblk()) and not self.is_root:
                        skipped_devices += 1
                        continue
                    self._entry(fd, tar, member, where, made)
        except tarfile.TarError as exc:
            raise IntegrityError(f"{what}: corrupt or truncated tar: {exc}") from exc
        finally:
            os.close(fd)
        if skipped_devices:
            self.warnings.append(f"{what}: skipped {skipped_devices} device(s): not root")
        return count

    def _entry(
        self, root_fd: int, tar: tarfile.TarFile, m: tarfile.TarInfo, where: str, made: set[Any]
    ) -> None:
        parts = split_name(m.name, where)
        if not parts:
            if m.isdir():
                self._dirs[()] = (m.mode & 0o7777, m.mtime)
                return
            raise InvalidInputError(f"{where}: names the root as a non-directory")
        base = parts[-1]
        if base.startswith(_WH):
            self._whiteout(root_fd, parts, where, made)
            return
        parent = open_dir(root_fd, parts[:-1], where, create=True)
        assert parent is not None
        try:
            for i in range(1, len(parts)):
                made.add(tuple(parts[:i]))
            made.add(tuple(parts))
            self._write(parent, root_fd=root_fd, tar=tar, m=m, parts=parts, where=where)
        finally:
            os.close(parent)

    def _whiteout(self, root_fd: int, parts: list[str], where: str, made: set[Any]) -> None:
        parent = open_dir(root_fd, parts[:-1], where, create=False)
        if parent is None:
            return
        try:
            if parts[-1] == _OPQ:
                prefix = tuple(parts[:-1])
                for child in os.listdir(parent):
                    if (*prefix, child) not in made:
                        remove_at(parent, child)
                return
            name = parts[-1][len(_WH) :]
            if not name or name.startswith(_WH):
                raise InvalidInputError(f"{where}: malformed whiteout")
            remove_at(parent, name)
            self._dirs = {
                k: v for k, v in self._dirs.items() if k[: len(parts)] != (*parts[:-1], name)
            }
        finally:
            os.close(parent)

    def _write(
        self,
        parent: int,
        *,
        root_fd: int,
        tar: tarfile.TarFile,
        m: tarfile.TarInfo,
        parts: list[str],
        where: str,
    ) -> None:
        name = parts[-1]
        old = lstat_at(parent, name)
        if m.isdir():
            if old is not None and not stat.S_ISDIR(old.st_mode):
                os.unlink(name, dir_fd=parent)
                old = None
            if old is None:
                os.mkdir(name, 0o700, dir_fd=parent)
            self._dirs[tuple(parts)] = (m.mode & 0o7777, m.mtime)
            self._own_xattrs(parent, name, m, is_dir=True)
            return
        if m.islnk():
            self._hardlink(parent, root_fd=root_fd, m=m, parts=parts, where=where, old=old)
            return
        if old is not None:
            remove_at(parent, name)
            self._dirs = {k: v for k, v in self._dirs.items() if k[: len(parts)] != tuple(parts)}
        if m.isreg():
            self._file(parent, name, tar, m, where)
        elif m.issym():
            os.symlink(m.linkname, name, dir_fd=parent)
            self._meta_link(parent, name, m)
        elif m.isfifo():
            os.mkfifo(name, m.mode & 0o7777, dir_fd=parent)
        elif m.ischr() or m.isblk():
            kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
            os.mknod(
                name, kind | (m.mode & 0o7777), os.makedev(m.devmajor, m.devminor), dir_fd=parent
            )
            self._meta_link(parent, name, m)
        else:
            raise InvalidInputError(f"{where}: unsupported tar entry type {m.type!r}")

    def _file(
        self, parent: int, name: str, tar: tarfile.TarFile, m: tarfile.TarInfo, where: str
    ) -> None:
        src = tar.extractfile(m)
        assert src is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(name, flags, 0o600, dir_fd=parent)
        try:
            left = m.size
            while left:
                chunk = src.read(min(left, _STEP))
                if not chunk:
                    raise IntegrityError(f"{where}: truncated file data")
                os.write(fd, chunk)
                left -= len(chunk)
            if self.is_root:
                os.fchown(fd, m.uid, m.gid)
            os.fchmod(fd, m.mode & 0o7777)
            self._xattrs(fd, m)
            os.utime(fd, ns=(int(m.mtime * 1e9), int(m.mtime * 1e9)))
        finally:
            os.close(fd)

    def _hardlink(
        self,
        parent: int,
        *,
        root_fd: int,
        m: tarfile.TarInfo,
        parts: list[str],
        where: str,
        old: os.stat_result | None,
    ) -> None:
        tparts = split_name(m.linkname, where)
        if not tparts:
            raise InvalidInputError(f"{where}: hard link to the root directory")
        tdir = open_dir(root_fd, tparts[:-1], where, create=False)
        if tdir is None:
            raise InvalidInputError(f"{where}: hard link target {m.linkname!r} does not exist")
        try:
            tst = lstat_at(tdir, tparts[-1])
            if tst is None:
                raise InvalidInputError(f"{where}: hard link target {m.linkname!r} does not exist")
            if stat.S_ISDIR(tst.st_mode):
                raise InvalidInputError(f"{where}: hard link to a directory {m.linkname!r}")
            if tparts == parts:
                return
            if old is not None:
                remove_at(parent, parts[-1])
            os.link(
                tparts[-1], parts[-1], src_dir_fd=tdir, dst_dir_fd=parent, follow_symlinks=False
            )
        finally:
            os.close(tdir)

    def _meta_link(self, parent: int, name: str, m: tarfile.TarInfo) -> None:
        if self.is_root:
            os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
        t = int(m.mtime * 1e9)
        os.utime(name, ns=(t, t), dir_fd=parent, follow_symlinks=False)

    def _own_xattrs(self, parent: int, name: str, m: tarfile.TarInfo, *, is_dir: bool) -> None:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        try:
            if self.is_root:
                os.fchown(fd, m.uid, m.gid)
            self._xattrs(fd, m)
        finally:
            os.close(fd)

    def _xattrs(self, fd: int, m: tarfile.TarInfo) -> None:
        for key, value in m.pax_headers.items():
            if key.startswith("SCHILY.xattr."):
                with contextlib.suppress(OSError):  # "where the filesystem allows"
                    os.setxattr(fd, key[13:], value.encode("utf-8", "surrogateescape"))

    def finish(self) -> None:
        """Set directory modes and mtimes, deepest first, after every layer is applied."""
        root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for parts, (mode, mtime) in sorted(self._dirs.items(), key=lambda kv: -len(kv[0])):
                fd = open_dir(root_fd, list(parts), f"directory {'/'.join(parts)!r}", create=False)
                if fd is None:
                    continue
                try:
                    os.fchmod(fd, mode)
                    t = int(mtime * 1e9)
                    os.utime(fd, ns=(t, t))
                finally:
                    os.close(fd)
        finally:
            os.close(root_fd)
