"""The OCI archive transport (``oci-archive:PATH[:REF]``): an OCI layout packed in a tar file.

:class:`OciArchiveSource` unpacks the archive into a private temporary directory (only regular
files and directories under ``blobs/``, plus ``index.json`` and ``oci-layout``; anything else —
links, devices, absolute or ``..`` names — is refused) and reads it as an
:class:`~lorry.transports.oci_layout.OciLayoutSource`. :class:`OciArchiveDestination` writes an
:class:`~lorry.transports.oci_layout.OciLayoutDestination` in ``PATH.lorry-partial/`` beside the
target (the same name every run, so a killed copy resumes) and, on
:meth:`~OciArchiveDestination.commit`, packs it into ``PATH.tmp-XXXX``, fsyncs it and renames it
onto ``PATH``: a half-written archive never sits at ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path, PurePosixPath

from lorry.digest import Digest
from lorry.errors import CancelledError, InvalidInputError, NotFoundError, StoreError
from lorry.oci import Descriptor
from lorry.store.fsutil import fsync_dir, os_error
from lorry.transports.oci_layout import OciLayoutDestination, OciLayoutSource
from lorry.transports.protocols import BlobOpener, BlobStream, DestinationProperties, WaitHook

__all__ = [
    "PARTIAL_SUFFIX",
    "OciArchiveDestination",
    "OciArchiveSource",
    "extract_layout",
    "partial_dir",
]

_TOP_FILES = frozenset({"index.json", "oci-layout"})
#: The suffix of the directory beside an archive where it is staged (see :func:`partial_dir`).
PARTIAL_SUFFIX = ".lorry-partial"


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


def _open_tar(archive: Path) -> tarfile.TarFile:
    """The archive opened for reading; a file that is no tar at all said so plainly."""
    try:
        return tarfile.open(archive, "r:*")
    except tarfile.ReadError:  # its message lists every compression tried
        raise InvalidInputError(
            f"OCI archive {archive}: not a tar file (plain, gzip, bzip2 or xz), or damaged"
        ) from None


def extract_layout(archive: Path, dest: Path) -> None:
    """Unpack the OCI archive ``archive`` into the empty directory ``dest``, safely."""
    try:
        with _open_tar(archive) as tar:
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
    """Write an image as an OCI archive: a layout staged beside it, packed and renamed at commit.

    The staging layout is ``PATH.lorry-partial/``, a name that does not change between runs,
    made at the first write: a copy that is killed leaves its verified blobs and partial data
    there, and the same copy run again resumes from them. A commit or an abort removes it.
    """

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self.path = Path(path)
        self._name = name
        self._ref = ref
        if self.path.is_dir():
            raise InvalidInputError(f"OCI archive {self.path}: is a directory")
        parent = self.path.parent
        if not parent.is_dir():
            raise NotFoundError(f"OCI archive {self.path}: directory {parent} does not exist")
        self._staging: Path | None = partial_dir(self.path)
        self._tar_tmp: Path | None = None
        #: Every blob and document of this copy: the archive holds these, not all staged.
        self._used: set[Digest] = set()
        self._lock = threading.Lock()
        #: put_blob calls running; an abort meanwhile leaves the staging to the last of them.
        self._writers = 0
        self._orphan: Path | None = None
        self._layout = self._open_staging(self._staging)

    def _open_staging(self, staging: Path) -> OciLayoutDestination:
        """The staging layout; one a crash left unusable (no oci-layout yet) is started anew."""
        if staging.exists() and not staging.is_dir():
            raise InvalidInputError(
                f"OCI archive {self.path}: {staging} is in the way (lorry stages the archive there)"
            )
        try:
            return OciLayoutDestination(staging, self._ref, self._name)
        except InvalidInputError:
            shutil.rmtree(staging, ignore_errors=True)
            return OciLayoutDestination(staging, self._ref, self._name)

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it."""
        return self._name

    @property
    def properties(self) -> DestinationProperties:
        """The same as an OCI layout's."""
        return self._layout.properties

    def reuse_blob(self, desc: Descriptor) -> bool:
        """True when the blob is staged already (by this copy, or a killed run of it)."""
        if self._layout.reuse_blob(desc):
            self._used.add(desc.digest)
            return True
        return False

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        """Write the blob, verified, into the staging layout (resuming its partial data)."""
        with self._lock:
            if self._staging is None:
                raise CancelledError(f"OCI archive {self.path}: the copy was committed or aborted")
            self._writers += 1
        try:
            self._layout.put_blob(desc, open_at, on_wait)
            self._used.add(desc.digest)
        finally:
            with self._lock:
                self._writers -= 1
                orphan = self._orphan if self._writers == 0 else None
                if orphan is not None:
                    self._orphan = None
            if orphan is not None:
                shutil.rmtree(orphan, ignore_errors=True)

    def put_manifest(
        self, raw: bytes, media_type: str, digest: Digest, *, top: bool = False
    ) -> None:
        """Store a document in the staging layout."""
        self._layout.put_manifest(raw, media_type, digest, top=top)
        self._used.add(digest)

    def commit(self) -> None:
        """Pack the staged image into a temporary file, fsync it and rename it onto ``PATH``."""
        root = self._staging
        if root is None:
            raise StoreError(f"OCI archive {self.path}: copy already committed or aborted")
        try:
            # index.json names this copy's image alone, whatever an earlier run staged.
            (root / "index.json").unlink(missing_ok=True)
            self._layout.commit()
            fd, tmp_name = tempfile.mkstemp(prefix=f"{self.path.name}.tmp-", dir=self.path.parent)
            self._tar_tmp = Path(tmp_name)
            with os.fdopen(fd, "wb") as f:
                with tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    for entry in ("oci-layout", "index.json"):
                        tar.add(root / entry, arcname=entry, recursive=False)
                    self._add_blobs(tar, root)
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

    def _add_blobs(self, tar: tarfile.TarFile, root: Path) -> None:
        """``blobs/ALG/HEX`` of every blob of this copy, sorted (a deterministic archive)."""
        tar.add(root / "blobs", arcname="blobs", recursive=False)
        by_alg: dict[str, list[Digest]] = {}
        for digest in self._used:
            by_alg.setdefault(digest.algorithm, []).append(digest)
        for alg in sorted(by_alg):
            tar.add(root / "blobs" / alg, arcname=f"blobs/{alg}", recursive=False)
            for digest in sorted(by_alg[alg], key=lambda d: d.encoded):
                name = f"blobs/{alg}/{digest.encoded}"
                tar.add(root / name, arcname=name, recursive=False)

    def _cleanup(self) -> None:
        with self._lock:
            staging, self._staging = self._staging, None
            if staging is not None and self._writers:
                self._orphan, staging = staging, None  # the last running write removes it
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        tar_tmp, self._tar_tmp = self._tar_tmp, None
        if tar_tmp is not None:
            with contextlib.suppress(OSError):
                tar_tmp.unlink()

    def abort(self) -> None:
        """Remove the staging layout and any half-written archive; PATH is untouched."""
        self._layout.abort()
        self._cleanup()


def partial_dir(archive: Path) -> Path:
    """Where an archive at ``archive`` is staged until its commit: ``ARCHIVE.lorry-partial``."""
    return archive.with_name(archive.name + PARTIAL_SUFFIX)
