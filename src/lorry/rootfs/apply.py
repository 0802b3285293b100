"""Apply layer tars in order to one directory, per OCI image-spec layer.md, never escaping it.

Every path is walked component by component from a directory descriptor with ``O_NOFOLLOW``
(``_fdpath``); ``..`` in any name, and a path through a symlink, refuse the layer. Directory
modes and mtimes are set once, after all layers, deepest first, so a read-only directory never
blocks a later write. Work is bounded by :class:`Limits`. The tar is read by
:class:`lorry.rootfs.tarstream.TarReader` (docs/decisions.md, "tar reader").
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

from lorry.errors import DiskFullError, IntegrityError, InvalidInputError, StoreError
from lorry.rootfs._fdpath import lstat_at, open_dir, remove_at, split_name
from lorry.rootfs.idmap import IdMap
from lorry.rootfs.tarstream import BLK, CHR, DIR, FIFO, LNK, REG, SYM, TarEntry, TarReader

__all__ = ["Limits", "Tree"]

_WH = ".wh."
_OPQ = ".wh..wh..opq"
_XATTR = "SCHILY.xattr."
_DEVICES = (CHR, BLK)
#: A full disk, a quota or a file-size limit: no more bytes fit where DIR is.
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def process_umask() -> int | None:
    """The process's umask, read from ``/proc/self/status`` (``os.umask`` would have to change
    it to read it, under any other thread creating files); None where the kernel does not say."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _has_default_acl(path: str) -> bool:
    """True when ``path`` has a default ACL (it, not the umask, masks new files' modes) or the
    question cannot be answered."""
    try:
        os.getxattr(path, "system.posix_acl_default")
    except OSError as exc:
        return exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP)
    return True


def _write_error(exc: OSError, where: str, root: str) -> StoreError:
    """One line for a write into DIR that the filesystem refused (full, read-only, denied)."""
    if exc.errno in _FULL:
        return DiskFullError(f"{where}: no space left writing into {root}")
    return StoreError(f"{where}: cannot write into {root}: {exc.strerror or exc}")


@dataclass(frozen=True)
class Limits:
    """Bounds on one layer: entries, and the size of a PAX / GNU long-name header."""

    max_entries: int = 2_000_000
    max_header: int = 1 << 20


class _Parent:
    """The descriptor of the last entry's parent directory, reused by the next entry with the
    same parent. Only entries that create or replace a child of that directory run while it is
    held, so the path still leads to it; any other entry (other parent, whiteout) drops it."""

    __slots__ = ("fd", "key")

    def __init__(self) -> None:
        self.key: tuple[str, ...] | None = None
        self.fd = -1

    def drop(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
        self.key, self.fd = None, -1


@dataclass
class Tree:
    """One root filesystem being built in ``root``; call :meth:`apply` per layer, then finish."""

    root: str
    limits: Limits = field(default_factory=Limits)
    is_root: bool = field(default_factory=lambda: os.geteuid() == 0)
    #: ``--uid-map``/``--gid-map`` (as root): owners shifted, an unmapped one refuses the layer.
    ids: IdMap = field(default_factory=IdMap)
    warnings: list[str] = field(default_factory=list)
    _dirs: dict[tuple[str, ...], tuple[int, float]] = field(default_factory=dict)
    #: The umask while this layer is applied; None when unknown or when DIR has a default ACL
    #: (its subdirectories inherit it), so that every file gets an fchmod.
    _umask: int | None = None

    def apply(self, stream: IO[bytes], what: str) -> int:
        """Apply one uncompressed layer tar; return its entry count. Errors name layer + entry."""
        self._umask = None if _has_default_acl(self.root) else process_umask()
        read: Callable[[int], Any] = getattr(stream, "read1", None) or stream.read
        tar = TarReader(read, what, self.limits.max_header)
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        made: set[tuple[str, ...]] = set()
        parent = _Parent()
        skipped_devices = 0
        count = 0
        try:
            for member in tar:
                count += 1
                if count > self.limits.max_entries:
                    raise IntegrityError(f"{what}: more than {self.limits.max_entries} entries")
                where = f"{what}: entry {member.name!r}"
                if member.type in _DEVICES and not self.is_root:
                    skipped_devices += 1
                    continue
                try:
                    self._entry(fd, tar, member, where, made=made, cache=parent)
                except OSError as exc:
                    raise _write_error(exc, where, self.root) from exc
        finally:
            parent.drop()
            os.close(fd)
        if skipped_devices:
            self.warnings.append(f"{what}: skipped {skipped_devices} device(s): not root")
        return count

    def _entry(
        self,
        root_fd: int,
        tar: TarReader,
        m: TarEntry,
        where: str,
        *,
        made: set[Any],
        cache: _Parent,
    ) -> None:
        if self.is_root and (self.ids.uids or self.ids.gids):
            m.uid, m.gid = self.ids.uid(m.uid, where), self.ids.gid(m.gid, where)
        parts = split_name(m.name, where)
        if not parts:
            if m.type == DIR:
                self._dirs[()] = (m.mode & 0o7777, m.mtime)
                return
            raise InvalidInputError(f"{where}: names the root as a non-directory")
        if parts[-1].startswith(_WH):
            cache.drop()
            self._whiteout(root_fd, parts, where, made)
            return
        key = tuple(parts[:-1])
        if key != cache.key:
            cache.drop()
            fd = open_dir(root_fd, parts[:-1], where, create=True)
            assert fd is not None
            cache.key, cache.fd = key, fd
            for i in range(1, len(parts)):
                made.add(tuple(parts[:i]))
        made.add(tuple(parts))
        self._write(cache.fd, root_fd=root_fd, tar=tar, m=m, parts=parts, where=where)

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

    def _replace(self, parent: int, parts: list[str]) -> None:
        """Remove what is at ``parts`` (a tree too) before a new non-directory takes its place."""
        remove_at(parent, parts[-1])
        self._dirs = {k: v for k, v in self._dirs.items() if k[: len(parts)] != tuple(parts)}

    def _write(
        self,
        parent: int,
        *,
        root_fd: int,
        tar: TarReader,
        m: TarEntry,
        parts: list[str],
        where: str,
    ) -> None:
        name = parts[-1]
        kind = m.type
        if kind == REG:
            self._file(parent, parts, tar, m)
        elif kind == DIR:
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                old = lstat_at(parent, name)
                if old is None or not stat.S_ISDIR(old.st_mode):
                    if old is not None:
                        os.unlink(name, dir_fd=parent)
                    os.mkdir(name, 0o700, dir_fd=parent)
            self._dirs[tuple(parts)] = (m.mode & 0o7777, m.mtime)
            if self.is_root or _has_xattrs(m):
                self._own_xattrs(parent, name, m)
        elif kind == LNK:
            old = lstat_at(parent, name)
            self._hardlink(parent, root_fd=root_fd, m=m, parts=parts, where=where, old=old)
        elif kind == SYM:
            self._create(parent, parts, lambda: os.symlink(m.linkname, name, dir_fd=parent))
            self._meta_link(parent, name, m)
        elif kind == FIFO:
            self._create(parent, parts, lambda: os.mkfifo(name, m.mode & 0o7777, dir_fd=parent))
        elif kind in _DEVICES:
            mode = (stat.S_IFCHR if kind == CHR else stat.S_IFBLK) | (m.mode & 0o7777)
            dev = os.makedev(m.devmajor, m.devminor)
            self._create(parent, parts, lambda: os.mknod(name, mode, dev, dir_fd=parent))
            self._meta_link(parent, name, m)
        else:
            raise InvalidInputError(f"{where}: unsupported tar entry type {kind!r}")

    def _create(self, parent: int, parts: list[str], make: Callable[[], None]) -> None:
        """Run ``make`` (an exclusive create); on EEXIST replace what is there and run it again."""
        try:
            make()
        except FileExistsError:
            self._replace(parent, parts)
            make()

    def _file(self, parent: int, parts: list[str], tar: TarReader, m: TarEntry) -> None:
        name = parts[-1]
        mode = m.mode & 0o7777
        # Created with its own mode when the umask keeps it whole and it has no setuid, setgid
        # or sticky bit (those the kernel may drop at create or chown): one fchmod less a file.
        umask = self._umask
        at_create = umask is not None and mode & (0o7000 | umask) == 0
        create_mode = mode if at_create else 0o600
        try:
            fd = os.open(name, _FILE_FLAGS, create_mode, dir_fd=parent)
        except FileExistsError:
            self._replace(parent, parts)
            fd = os.open(name, _FILE_FLAGS, create_mode, dir_fd=parent)
        try:
            write = os.write
            for piece in tar.data():
                done = write(fd, piece)
                while done < len(piece):  # a short write: write the rest
                    done += write(fd, memoryview(piece)[done:])
            if self.is_root:
                os.fchown(fd, m.uid, m.gid)
            if not at_create:
                os.fchmod(fd, mode)
            if m.pax:
                self._xattrs(fd, m)
            t = int(m.mtime * 1e9)
            os.utime(fd, ns=(t, t))
        finally:
            os.close(fd)

    def _hardlink(
        self,
        parent: int,
        *,
        root_fd: int,
        m: TarEntry,
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

    def _meta_link(self, parent: int, name: str, m: TarEntry) -> None:
        if self.is_root:
            os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
        t = int(m.mtime * 1e9)
        os.utime(name, ns=(t, t), dir_fd=parent, follow_symlinks=False)

    def _own_xattrs(self, parent: int, name: str, m: TarEntry) -> None:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        try:
            if self.is_root:
                os.fchown(fd, m.uid, m.gid)
            self._xattrs(fd, m)
        finally:
            os.close(fd)

    def _xattrs(self, fd: int, m: TarEntry) -> None:
        for key, value in m.pax.items():
            if key.startswith(_XATTR):
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
                except OSError as exc:
                    raise _write_error(exc, f"directory {'/'.join(parts)!r}", self.root) from exc
                finally:
                    os.close(fd)
        finally:
            os.close(root_fd)


def _has_xattrs(m: TarEntry) -> bool:
    return any(key.startswith(_XATTR) for key in m.pax)
