"""The docker-archive destination: a tar that ``docker load`` (20.10 and later) and skopeo read.

It writes the Docker 25 style (``oci-layout``, ``index.json``, ``blobs/sha256/…``; blobs kept
as they are, also compressed, which ``docker load`` detects) plus the ``manifest.json`` and
``repositories`` that older loaders read. Blobs are staged, verified, in ``PATH.lorry-partial``
next to the target (the same name every run, so a killed copy resumes from what it staged);
:meth:`DockerArchiveDestination.commit` writes the tar to a temporary file and
renames it onto the target, so the target only ever holds a complete archive.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import CancelledError, InvalidInputError, InvalidReference, UnsupportedError
from lorry.oci import Descriptor, Manifest
from lorry.reference import Reference, parse_docker_ref
from lorry.store.fsutil import atomic_write, fsync_dir, os_error
from lorry.transports.files import DirectoryBlobs, write_blob
from lorry.transports.oci_archive import partial_dir
from lorry.transports.oci_layout import INGEST_DIR
from lorry.transports.protocols import BlobOpener, DestinationProperties, WaitHook

__all__ = ["DockerArchiveDestination"]

_REF_NAME = "org.opencontainers.image.ref.name"
_IMAGE_NAME = "io.containerd.image.name"


@dataclass
class _Image:
    """One image to write: its manifest (once put) and the name it is tagged with."""

    ref: Reference | None
    manifest: Manifest | None = None


class DockerArchiveDestination:
    """Write a docker-archive at ``path`` that ``docker load`` (20.10 and later) and skopeo read.

    One destination holds one image by default, tagged ``ref`` (None: untagged). To put several
    images in one archive, call :meth:`next_image` before the blobs and manifest of each further
    image; every image gets its own ``manifest.json`` entry and RepoTags.
    """

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self._path = Path(path)
        self._name = name
        self._images = [_Image(self._parse_ref(ref))]
        self._staging: Path | None = None
        self._tmp_tar: Path | None = None
        self._lock = threading.Lock()
        self._done = False
        #: put_blob calls running; an abort meanwhile leaves the staging to the last of them.
        self._writers = 0
        self._orphan: Path | None = None

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it."""
        return self._name

    @property
    def properties(self) -> DestinationProperties:
        """One image manifest per image, no index, no reuse, no DiffIDs needed."""
        return DestinationProperties(
            manifest_types=frozenset({mt.DOCKER_MANIFEST_V2, mt.OCI_MANIFEST}),
            accepts_index=False,
            reuse=frozenset(),
            needs_diff_ids=False,
        )

    def _parse_ref(self, ref: str | None) -> Reference | None:
        if ref is None:
            return None
        try:
            return parse_docker_ref(ref)
        except InvalidReference as exc:
            raise InvalidInputError(f"docker-archive {self._path}: {exc}") from exc

    def next_image(self, ref: str | None) -> None:
        """Start another image of the archive, tagged ``ref``; the current one must be complete."""
        if self._images[-1].manifest is None:
            raise InvalidInputError(
                f"docker-archive {self._path}: next_image before the current image's manifest"
            )
        self._images.append(_Image(self._parse_ref(ref)))

    # -- staging -------------------------------------------------------------------------------

    def _staging_dir(self, *, create: bool) -> Path:
        """``PATH.lorry-partial``: the same every run, so a killed copy resumes from it."""
        with self._lock:
            if self._done:
                raise InvalidInputError(
                    f"docker-archive {self._path}: already committed or aborted"
                )
            staging = partial_dir(self._path)
            if create and self._staging is None:
                if staging.exists() and not staging.is_dir():
                    raise InvalidInputError(
                        f"docker-archive {self._path}: {staging} is in the way "
                        "(lorry stages the archive there)"
                    )
                try:
                    self._path.parent.mkdir(parents=True, exist_ok=True)
                    (staging / "blobs").mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise os_error(exc, "creating", staging) from exc
                self._staging = staging
            return staging

    def _blob_path(self, digest: Digest, *, create: bool = True) -> Path:
        return self._staging_dir(create=create) / "blobs" / digest.algorithm / digest.encoded

    def reuse_blob(self, desc: Descriptor) -> bool:
        """True when the blob is staged already (by this copy, or a killed run of it)."""
        return self._blob_path(desc.digest, create=False).is_file()

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        """Stage the blob through the verifying ingest; visible (staged) only when complete."""
        with self._writing() as staging:
            write_blob(DirectoryBlobs(staging, INGEST_DIR).writer(desc, on_wait), open_at)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Path]:
        """Count a running write, so an abort never removes the staging under it."""
        staging = self._staging_dir(create=True)
        with self._lock:
            if self._done:
                raise CancelledError(f"docker-archive {self._path}: the copy was aborted")
            self._writers += 1
        try:
            yield staging
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
        """Record the image manifest (``top``) of the current image; others are refused."""
        if mt.is_index(media_type):
            raise UnsupportedError(
                f"docker-archive {self._path}: holds one image manifest per image, not an index"
            )
        if media_type not in self.properties.manifest_types:
            raise UnsupportedError(
                f"docker-archive {self._path}: cannot store a manifest of type {media_type}"
            )
        manifest = Manifest.parse(raw, media_type)
        if not manifest.matches_digest(digest):
            raise InvalidInputError(f"docker-archive {self._path}: manifest is not {digest}")
        staged = self._blob_path(manifest.digest)
        if not staged.is_file():
            try:
                staged.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise os_error(exc, "creating", staged.parent) from exc
            atomic_write(staged, raw)  # a killed run never leaves half a manifest staged
        if top:
            self._images[-1].manifest = manifest

    # -- commit --------------------------------------------------------------------------------

    def _documents(self) -> tuple[bytes, bytes, bytes | None]:
        """manifest.json, index.json and repositories (None when no image is tagged)."""
        entries: list[dict[str, Any]] = []
        index: list[dict[str, Any]] = []
        repositories: dict[str, dict[str, str]] = {}
        for image in self._images:
            manifest = image.manifest
            if manifest is None:
                raise InvalidInputError(
                    f"docker-archive {self._path}: an image has no manifest; nothing to commit"
                )
            for desc in (manifest.config, *manifest.layers):
                if not (self._blob_path(desc.digest)).is_file():
                    raise InvalidInputError(
                        f"docker-archive {self._path}: blob {desc.digest} was never written"
                    )
            tags: list[str] = []
            annotations: dict[str, str] = {}
            ref = image.ref
            if ref is not None and ref.tag is not None:
                tags.append(ref.familiar)
                annotations = {_IMAGE_NAME: str(ref), _REF_NAME: ref.tag}
                top = manifest.layers[-1].digest.encoded if manifest.layers else ""
                repositories.setdefault(ref.familiar_name, {})[ref.tag] = top
            entries.append(
                {
                    "Config": f"blobs/{manifest.config.digest.algorithm}/"
                    f"{manifest.config.digest.encoded}",
                    "RepoTags": tags,
                    "Layers": [
                        f"blobs/{d.digest.algorithm}/{d.digest.encoded}" for d in manifest.layers
                    ],
                }
            )
            pointer: dict[str, Any] = {
                "mediaType": manifest.media_type,
                "digest": str(manifest.digest),
                "size": len(manifest.raw),
            }
            if annotations:
                pointer["annotations"] = annotations
            index.append(pointer)
        index_doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": index}
        repos = json.dumps(repositories).encode() if repositories else None
        return json.dumps(entries).encode(), json.dumps(index_doc).encode(), repos

    def _blob_order(self) -> list[Digest]:
        """Every blob to write once: per image its config, layers and manifest."""
        seen: dict[Digest, None] = {}
        for image in self._images:
            assert image.manifest is not None  # checked by _documents
            m = image.manifest
            for d in (m.config.digest, *(x.digest for x in m.layers), m.digest):
                seen.setdefault(d, None)
        return list(seen)

    def commit(self) -> None:
        """Write the archive to ``PATH.tmp-XXXX``, fsync it and rename it onto ``PATH``."""
        manifest_json, index_json, repositories = self._documents()
        blobs = self._blob_order()
        parent = self._path.parent
        fd, tmp_name = tempfile.mkstemp(prefix=f"{self._path.name}.tmp-", dir=parent)
        self._tmp_tar = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
                    _add_dir(tar, "blobs")
                    _add_dir(tar, "blobs/sha256")
                    for digest in blobs:
                        path = self._blob_path(digest)
                        info = _file_info(f"blobs/{digest.algorithm}/{digest.encoded}")
                        info.size = path.stat().st_size
                        with open(path, "rb") as blob:
                            tar.addfile(info, blob)
                    _add_bytes(tar, "index.json", index_json)
                    _add_bytes(tar, "manifest.json", manifest_json)
                    _add_bytes(tar, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
                    if repositories is not None:
                        _add_bytes(tar, "repositories", repositories)
                out.flush()
                os.fsync(out.fileno())
            os.replace(self._tmp_tar, self._path)
            self._tmp_tar = None
            fsync_dir(parent)
        except BaseException:
            self.abort()
            raise
        self._cleanup()

    def _cleanup(self) -> None:
        with self._lock:
            self._done = True
            staging, self._staging = self._staging, None
            if staging is not None and self._writers:
                self._orphan, staging = staging, None  # the last running write removes it
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

    def abort(self) -> None:
        """Remove staging and any temporary tar; ``PATH`` is left as it was. Idempotent.

        Only a copy that is killed (no abort runs) leaves ``PATH.lorry-partial`` behind, for
        the same copy run again to resume from.
        """
        tmp, self._tmp_tar = self._tmp_tar, None
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        self._cleanup()


def _file_info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.type = 0o644, 0, tarfile.REGTYPE
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.mode, info.mtime, info.type = 0o755, 0, tarfile.DIRTYPE
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = _file_info(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
