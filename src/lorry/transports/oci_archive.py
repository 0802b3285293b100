"""The OCI archive transport (``oci-archive:PATH[:REF]``): an OCI layout packed in a tar file.

:class:`OciArchiveSource` unpacks the archive into a private temporary directory (only regular
files and directories under ``blobs/``, plus ``index.json`` and ``oci-layout``; anything else —
links, devices, absolute or ``..`` names — is refused) and reads it as an
:class:`~lorry.transports.oci_layout.OciLayoutSource`. :class:`OciArchiveDestination` writes an
:class:`~lorry.transports.oci_layout.OciLayoutDestination` in a temporary directory beside the
target and, on :meth:`~OciArchiveDestination.commit`, packs it into ``PATH.tmp-XXXX``, fsyncs it
and renames it onto ``PATH``: a half-written archive never sits at ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path, PurePosixPath

from lorry.digest import Digest
from lorry.errors import InvalidInputError, NotFoundError, StoreError
from lorry.oci import Descriptor
from lorry.store.fsutil import fsync_dir, os_error
from lorry.transports.oci_layout import INGEST_DIR, OciLayoutDestination, OciLayoutSource
from lorry.transports.protocols import BlobOpener, BlobStream, DestinationProperties

__all__ = ["OciArchiveDestination", "OciArchiveSource", "extract_layout"]

_TOP_FILES = frozenset({"index.json", "oci-layout"})


def _member_name(archive: Path, member: tarfile.TarInfo) -> PurePosixPath | None:
    """The member's safe relative name, None for the root entry; InvalidInputError if unsafe."""
    name = PurePosixPath(member.name)
    if name.is_absolute() or ".." in name.parts:
        raise InvalidInputError(f"OCI archive {archive}: unsafe member name {member.name!r}")
    parts = [p for p in name.parts if p != "."]
    if not parts:
        if member.isdir():
            return None
        raise InvalidInputError(f"OCI archive {archive}: unsafe member name {member.name!r}")
    rel = PurePosixPath(*parts)
    if member.isdir():
        if parts[0] != "blobs":
            raise InvalidInputError(f"OCI archive {archive}: unexpected directory {member.name!r}")
        return rel
    if not member.isreg():
        raise InvalidInputError(
            f"OCI archive {archive}: member {member.name!r} is not a regular file or directory"
        )
    if not (str(rel) in _TOP_FILES or (parts[0] == "blobs" and len(parts) >= 3)):
        raise InvalidInputError(f"OCI archive {archive}: unexpected member {member.name!r}")
    return rel


def extract_layout(archive: Path, dest: Path) -> None:
    """Unpack the OCI archive ``archive`` into the empty directory ``dest``, safely."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                rel = _member_name(archive, member)
                if rel is None:
                    continue
                target = dest.joinpath(*rel.parts)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                src = tar.extractfile(member)
                if src is None:  # pragma: no cover - isreg() members always have data
                    raise InvalidInputError(f"OCI archive {archive}: unreadable {member.name!r}")
                with src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except FileNotFoundError:
        raise NotFoundError(f"OCI archive {archive}: no such file") from None
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidInputError(f"OCI archive {archive}: damaged or truncated tar: {exc}") from None
    except OSError as exc:
        raise os_error(exc, "extracting OCI archive", archive) from exc


class OciArchiveSource:
    """Read an image from an OCI archive, unpacked into a temporary directory."""

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self.path = Path(path)
        self._name = name
        self._tmp: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix="lorry-oci-archive-"
        )
        try:
            root = Path(self._tmp.name)
            extract_layout(self.path, root)
            try:
                self._layout = OciLayoutSource(root, ref, name)
            except InvalidInputError as exc:
                raise InvalidInputError(f"OCI archive {self.path}: {exc}") from None
        except BaseException:
            self.close()
            raise

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it."""
        return self._name

    def get_manifest(self, ref: str | Digest | None = None) -> tuple[bytes, str, Digest]:
        """A document from the unpacked layout (see :meth:`OciLayoutSource.get_manifest`)."""
        return self._layout.get_manifest(ref)

    def open_blob(self, desc: Descriptor, offset: int = 0) -> BlobStream:
        """A blob from the unpacked layout, unverified."""
        return self._layout.open_blob(desc, offset)

    def close(self) -> None:
        """Remove the temporary directory. Idempotent."""
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            tmp.cleanup()


class OciArchiveDestination:
    """Write an image as an OCI archive: a layout in a temp dir, packed and renamed at commit."""

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self.path = Path(path)
        self._name = name
        if self.path.is_dir():
            raise InvalidInputError(f"OCI archive {self.path}: is a directory")
        parent = self.path.parent
        if not parent.is_dir():
            raise NotFoundError(f"OCI archive {self.path}: directory {parent} does not exist")
        try:
            self._tmp: Path | None = Path(
                tempfile.mkdtemp(prefix=f".{self.path.name}.lorry-", dir=parent)
            )
        except OSError as exc:
            raise os_error(exc, "creating a temporary directory in", parent) from exc
        self._tar_tmp: Path | None = None
        self._layout = OciLayoutDestination(self._tmp / "layout", ref, name)

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it."""
        return self._name

    @property
    def properties(self) -> DestinationProperties:
        """The same as an OCI layout's."""
        return self._layout.properties

    def reuse_blob(self, desc: Descriptor) -> bool:
        """True when this copy wrote the blob already (a fresh archive holds nothing else)."""
        return self._layout.reuse_blob(desc)

    def put_blob(self, desc: Descriptor, open_at: BlobOpener) -> None:
        """Write the blob, verified, into the temporary layout."""
        self._layout.put_blob(desc, open_at)

    def put_manifest(
        self, raw: bytes, media_type: str, digest: Digest, *, top: bool = False
    ) -> None:
        """Store a document in the temporary layout."""
        self._layout.put_manifest(raw, media_type, digest, top=top)

    def commit(self) -> None:
        """Pack the layout into ``PATH.tmp-XXXX``, fsync it and rename it onto ``PATH``."""
        if self._tmp is None:
            raise StoreError(f"OCI archive {self.path}: copy already committed or aborted")
        self._layout.commit()
        root = self._tmp / "layout"
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f"{self.path.name}.tmp-", dir=self.path.parent)
            self._tar_tmp = Path(tmp_name)
            with os.fdopen(fd, "wb") as f:
                with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for entry in ("oci-layout", "index.json"):
                        tar.add(root / entry, arcname=entry, recursive=False)
                    self._add_tree(tar, root / "blobs", "blobs")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(self._tar_tmp, 0o644)
            os.replace(self._tar_tmp, self.path)
            self._tar_tmp = None
            fsync_dir(self.path.parent)
        except OSError as exc:
            self.abort()
            raise os_error(exc, "writing OCI archive", self.path) from exc
        except BaseException:
            self.abort()
            raise
        self._cleanup()

    @staticmethod
    def _add_tree(tar: tarfile.TarFile, directory: Path, arcname: str) -> None:
        """Add ``directory`` with sorted entries (a deterministic archive), skipping ingest."""
        tar.add(directory, arcname=arcname, recursive=False)
        for child in sorted(directory.iterdir()):
            if child.name == INGEST_DIR:
                continue
            name = f"{arcname}/{child.name}"
            if child.is_dir():
                OciArchiveDestination._add_tree(tar, child, name)
            else:
                tar.add(child, arcname=name, recursive=False)

    def _cleanup(self) -> None:
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        tar_tmp, self._tar_tmp = self._tar_tmp, None
        if tar_tmp is not None:
            with contextlib.suppress(OSError):
                tar_tmp.unlink()

    def abort(self) -> None:
        """Remove the temporary layout and any half-written archive; PATH is untouched."""
        self._layout.abort()
        self._cleanup()
