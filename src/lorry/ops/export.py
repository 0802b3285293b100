"""``lorry export``: a stored image's flattened filesystem as one tar, whiteouts applied.

As ``crane export`` does, layers are read top first: an entry is written unless a higher layer
already wrote that path, deleted it (``.wh.NAME``) or made a parent opaque (``.wh..wh..opq``).
Entries keep their owners, modes and times from the layer tars. A hard link stays a link only
when its target is this layer's file in the output; when a higher layer replaced or deleted
the target, the link is written as a regular file with the target's content (read again from
the layer), so it never names another file's bytes or nothing at all. Each blob is
digest-checked as it streams and its DiffID hashed and recorded in the store
(:func:`lorry.ops.unpack.open_layer`); the layer tars are read by unpack's strict reader
(:class:`lorry.rootfs.tarstream.TarReader`), the output written with ``tarfile``.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, BinaryIO

from lorry.digest import Digest
from lorry.errors import IntegrityError
from lorry.ops.unpack import open_layer
from lorry.rootfs.apply import Limits
from lorry.rootfs.tarstream import LNK, REG, TarEntry, TarReader
from lorry.store.fsutil import fsync_dir, os_error
from lorry.store.layers import Layer
from lorry.store.store import Store

__all__ = ["export_from_store", "export_to_file"]

#: Unpack's bounds on one layer: entries and extended-header sizes.
_LIMITS = Limits()
_WH = ".wh."
_OPAQUE = ".wh..wh..opq"
#: Link chains followed when a hard link's target is itself a link.
_MAX_LINK_HOPS = 8
#: Bytes of a materialised link target kept in memory before spilling to a temporary file.
_SPOOL = 8 << 20


def _clean(name: str, what: str) -> str:
    """The entry's path relative to the root, or an error for one that climbs out."""
    path = posixpath.normpath("/" + name).lstrip("/")
    if ".." in name.split("/"):
        raise IntegrityError(f"{what}: entry {name!r} climbs out of the root")
    return path


def _hidden(path: str, gone: set[str], opaque: set[str]) -> bool:
    """Whether a higher layer deleted ``path`` or one of its parents, or made a parent opaque."""
    if path in gone:
        return True
    parent = path
    while parent:
        parent = posixpath.dirname(parent)
        if parent in gone or parent in opaque:
            return True
    return False


def export_from_store(store: Store, image_id: Digest, out: BinaryIO) -> int:
    """Write the image's flattened filesystem to ``out`` as a tar; return the entries written."""
    image = store.images.get(image_id)
    chain = store.layers.chain(image.top_layer)
    written: set[str] = set()
    gone: set[str] = set()
    opaque: set[str] = set()
    count = 0
    with (
        contextlib.ExitStack() as stack,
        store.hold(),
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as dst,
    ):
        for layer in reversed(chain):
            what = f"layer {layer.blob_digest}"
            reader = open_layer(store, layer)
            stack.callback(reader.close)
            gone_here: set[str] = set()
            opaque_here: set[str] = set()
            written_here: set[str] = set()
            tar = TarReader(reader.read1, what, _LIMITS.max_header)
            for n, entry in enumerate(tar, 1):
                if n > _LIMITS.max_entries:  # the same bound unpack has
                    raise IntegrityError(f"{what}: more than {_LIMITS.max_entries} entries")
                path = _clean(entry.name, what)
                base = posixpath.basename(path)
                if base == _OPAQUE:
                    opaque_here.add(posixpath.dirname(path))
                    continue
                if base.startswith(_WH):
                    gone_here.add(posixpath.join(posixpath.dirname(path), base[4:]))
                    continue
                if not path or path in written or _hidden(path, gone, opaque):
                    continue
                written.add(path)
                written_here.add(path)
                if entry.type == LNK:
                    target = _clean(entry.linkname, what)
                    if target in written_here:
                        dst.addfile(_tarinfo(entry, path, linkname=target))
                    else:  # the target was replaced or deleted above: copy its bytes
                        info, copied = _target_file(store, layer, target, path)
                        with copied:
                            dst.addfile(info, copied)
                elif entry.type == REG:
                    dst.addfile(_tarinfo(entry, path), _Pieces(tar.data()))
                else:
                    dst.addfile(_tarinfo(entry, path))
                count += 1
            found, size = reader.diff_id()
            store.layers.record_check(layer.chain_id, found, size)
            gone |= gone_here
            opaque |= opaque_here
    return count


def _target_file(
    store: Store, layer: Layer, target: str, name: str
) -> tuple[tarfile.TarInfo, IO[bytes]]:
    """The regular file ``target`` of ``layer`` as entry ``name``: header and spooled bytes."""
    what = f"layer {layer.blob_digest}"
    for _ in range(_MAX_LINK_HOPS):
        found = None
        reader = open_layer(store, layer)
        with contextlib.closing(reader):
            tar = TarReader(reader.read1, what, _LIMITS.max_header)
            for entry in tar:
                if _clean(entry.name, what) != target:
                    continue
                if entry.type == LNK:
                    found = entry
                    break
                if entry.type != REG:
                    raise IntegrityError(f"{what}: hard link {name!r} names {target!r}, not a file")
                data = tempfile.SpooledTemporaryFile(_SPOOL)  # noqa: SIM115 - the caller closes it
                for piece in tar.data():
                    data.write(piece)
                data.seek(0)
                return _tarinfo(entry, name), data
        if found is None:
            raise IntegrityError(f"{what}: hard link {name!r} names {target!r}, which it lacks")
        target = _clean(found.linkname, what)
    raise IntegrityError(f"{what}: hard link {name!r}: more than {_MAX_LINK_HOPS} links deep")


def _tarinfo(entry: TarEntry, name: str, linkname: str | None = None) -> tarfile.TarInfo:
    """The output header of ``entry`` under ``name``: type, mode, owners, time, xattrs."""
    info = tarfile.TarInfo(name)
    info.type = entry.type
    info.mode = entry.mode & 0o7777
    info.uid, info.gid, info.uname, info.gname = entry.uid, entry.gid, entry.uname, entry.gname
    info.mtime = entry.mtime
    info.size = entry.size if entry.type == REG else 0
    info.linkname = entry.linkname if linkname is None else linkname
    info.devmajor, info.devminor = entry.devmajor, entry.devminor
    info.pax_headers = {k: v for k, v in entry.pax.items() if k.startswith("SCHILY.xattr.")}
    return info


class _Pieces:
    """A ``read(n)`` file over an entry's data pieces, for ``TarFile.addfile``."""

    def __init__(self, pieces: Iterator[bytes | memoryview]) -> None:
        self._pieces = pieces
        self._held = memoryview(b"")

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (the rest with -1); b"" at the end."""
        out = bytearray()
        while n < 0 or len(out) < n:
            if not self._held:
                piece = next(self._pieces, None)
                if piece is None:
                    break
                self._held = memoryview(piece)
            take = len(self._held) if n < 0 else min(n - len(out), len(self._held))
            out += self._held[:take]
            self._held = self._held[take:]
        return bytes(out)


def export_to_file(store: Store, image_id: Digest, path: Path) -> int:
    """Export into ``path`` through a temporary file renamed into place once complete."""
    tmp = path.with_name(f".{path.name}.lorry-tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as f:
            count = export_from_store(store, image_id, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise os_error(exc, "writing", path) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count
