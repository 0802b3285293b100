"""``lorry export``: a stored image's flattened filesystem as one tar, whiteouts applied.

As ``crane export`` does, layers are read top first: an entry is written unless a higher layer
already wrote that path, deleted it (``.wh.NAME``) or made a parent opaque (``.wh..wh..opq``).
Entries keep their owners, modes and times from the layer tars. Each blob is digest-checked as
it streams and its DiffID hashed and recorded in the store (:func:`lorry.ops.unpack.open_layer`).
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from pathlib import Path
from typing import BinaryIO

from lorry.digest import Digest
from lorry.errors import IntegrityError
from lorry.ops.unpack import open_layer
from lorry.store.fsutil import fsync_dir, os_error
from lorry.store.store import Store

__all__ = ["export_from_store", "export_to_file"]

_WH = ".wh."
_OPAQUE = ".wh..wh..opq"


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
    with store.hold(), tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as dst:
        for layer in reversed(chain):
            what = f"layer {layer.blob_digest}"
            reader = open_layer(store, layer)
            gone_here: set[str] = set()
            opaque_here: set[str] = set()
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
                        member.name = path
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
