"""``lorry export``: a stored image's flattened filesystem as one tar, whiteouts applied.

As ``crane export`` does, layers are read top first: an entry is written unless a higher layer
already wrote that path, deleted it (``.wh.NAME``) or made a parent opaque (``.wh..wh..opq``).
Entries keep their owners, modes and times from the layer tars. A hard link stays a link only
when its target is this layer's file in the output; when a higher layer replaced or deleted
the target, the link is written as a regular file with the target's content (read again from
the layer), so it never names another file's bytes or nothing at all. Each blob is digest-checked as
it streams and its DiffID hashed and recorded in the store (:func:`lorry.ops.unpack.open_layer`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import posixpath
import tarfile
import tempfile
from pathlib import Path
from typing import IO, BinaryIO

from lorry.digest import Digest
from lorry.errors import IntegrityError
from lorry.ops.unpack import open_layer
from lorry.store.fsutil import fsync_dir, os_error
from lorry.store.layers import Layer
from lorry.store.store import Store

__all__ = ["export_from_store", "export_to_file"]

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
    chain = store.layers.chain(image.top_layer) if image.top_layer is not None else []
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
            try:
                with tarfile.open(fileobj=reader, mode="r|") as src:  # type: ignore[call-overload]
                    for member in src:
                        path = _clean(member.name, what)
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
                        member.name = path
                        if member.islnk():
                            target = _clean(member.linkname, what)
                            if target in written_here:
                                member.linkname = target
                                dst.addfile(member)
                            else:  # the target was replaced or deleted above: copy its bytes
                                info, copied = _target_file(store, layer, target, path)
                                with copied:
                                    dst.addfile(info, copied)
                            count += 1
                            continue
                        data = src.extractfile(member) if member.isreg() else None
                        dst.addfile(member, data)
                        count += 1
            except tarfile.TarError as exc:
                raise IntegrityError(f"{what}: not a valid tar: {exc}") from exc
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
        with contextlib.closing(reader), tarfile.open(fileobj=reader, mode="r|") as src:  # type: ignore[call-overload]
            for member in src:
                if _clean(member.name, what) != target:
                    continue
                if member.islnk():
                    found = member
                    break
                if not member.isreg():
                    raise IntegrityError(f"{what}: hard link {name!r} names {target!r}, not a file")
                data = tempfile.SpooledTemporaryFile(_SPOOL)  # noqa: SIM115 - the caller closes it
                source = src.extractfile(member)
                assert source is not None
                while chunk := source.read(1 << 20):
                    data.write(chunk)
                data.seek(0)
                info = copy.copy(member)
                info.name = name
                return info, data
        if found is None:
            raise IntegrityError(f"{what}: hard link {name!r} names {target!r}, which it lacks")
        target = _clean(found.linkname, what)
    raise IntegrityError(f"{what}: hard link {name!r}: more than {_MAX_LINK_HOPS} links deep")


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
