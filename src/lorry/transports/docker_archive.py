"""The docker-archive transport: the tar that ``docker save`` writes and ``docker load`` reads.

A docker-archive holds ``manifest.json``, a list of images, each ``{"Config": member,
"RepoTags": [...], "Layers": [member, ...]}`` (bottom layer first). Docker before 25 names
members ``<hex>.json`` and ``<id>/layer.tar``; Docker 25 and later write an OCI layout in the
same tar (``oci-layout``, ``index.json``, ``blobs/sha256/…``) and name those blobs in
``manifest.json``; skopeo writes ``<hex>.json`` and ``<hex>.tar``. There is no registry
manifest in any of them, so :class:`DockerArchiveSource` synthesises a Docker schema2 manifest
whose layers are the members exactly as stored (digest and size of the stored bytes; gzip media
type when the member is gzip, plain tar otherwise).

:class:`DockerArchiveDestination` writes the Docker 25 style (blobs kept as they are, also
compressed, which ``docker load`` detects) plus the ``manifest.json`` and ``repositories`` that
older loaders read, so Docker 20.10, current Docker and skopeo all load it. Blobs are staged,
verified, in a directory next to the target; :meth:`~DockerArchiveDestination.commit` writes
the tar to a temporary file and renames it onto the target, so the target only ever holds a
complete archive.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import shutil
import tarfile
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import Digest, Hasher, Verifier
from lorry.errors import (
    InvalidInputError,
    InvalidReference,
    NotFoundError,
    UnsupportedError,
)
from lorry.oci import Descriptor, Manifest
from lorry.reference import Reference, parse_docker_ref
from lorry.transports.files import FileBlobStream
from lorry.transports.protocols import BlobOpener, DestinationProperties

__all__ = [
    "DockerArchiveDestination",
    "DockerArchiveSource",
]

_GZIP_MAGIC = b"\x1f\x8b"
_MANIFEST_JSON = "manifest.json"
_REF_NAME = "org.opencontainers.image.ref.name"
_IMAGE_NAME = "io.containerd.image.name"
_MAX_JSON = 64 << 20
_MAX_LINKS = 16


def _member_name(name: str) -> str:
    """A member name normalised: no leading ``./`` or ``/``, no ``..`` games."""
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


def _familiar(text: str) -> str | None:
    """``text`` as Docker's familiar ``name:tag`` (tag defaulting to latest); None if invalid."""
    try:
        return parse_docker_ref(text).familiar
    except InvalidReference:
        return None


@dataclass(frozen=True)
class _Entry:
    """One image of ``manifest.json``: its config and layer members and its tags."""

    config: str
    layers: tuple[str, ...]
    repo_tags: tuple[str, ...]


class DockerArchiveSource:
    """Read one image of a docker-archive (``docker save``, skopeo or lorry wrote it).

    ``ref`` picks the ``manifest.json`` entry whose RepoTags holds it (compared in Docker's
    familiar form, ``alpine`` meaning ``alpine:latest``); ``@N`` the N-th entry (as skopeo
    reads it); None the only entry. The tar is indexed once at construction; layer digests
    are hashed lazily, once, on first need.
    """

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self._path = Path(path)
        self._ref = ref
        self._name = name
        self._lock = threading.Lock()
        self._members = self._index()
        self._entries = self._read_manifest_json()
        self._entry = self._choose(ref)
        self._manifest: Manifest | None = None
        self._blobs: dict[Digest, tarfile.TarInfo] = {}

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it."""
        return self._name

    @property
    def repo_tags(self) -> list[tuple[str, ...]]:
        """The RepoTags of every image in the archive, in order (``@N`` names image N)."""
        return [e.repo_tags for e in self._entries]

    # -- indexing ------------------------------------------------------------------------------

    def _index(self) -> dict[str, tarfile.TarInfo]:
        """Every member of the tar by normalised name; InvalidInputError when it is damaged."""
        try:
            total = self._path.stat().st_size
        except FileNotFoundError:
            raise NotFoundError(f"docker-archive {self._path}: no such file") from None
        except OSError as exc:
            raise InvalidInputError(f"docker-archive {self._path}: {exc}") from exc
        members: dict[str, tarfile.TarInfo] = {}
        try:
            with tarfile.open(self._path, mode="r:") as tar:
                for info in tar:
                    if info.isreg() and info.offset_data + info.size > total:
                        raise InvalidInputError(
                            f"docker-archive {self._path}: truncated tar "
                            f"(member {info.name} ends past the end of the file)"
                        )
                    members[_member_name(info.name)] = info
        except (tarfile.TarError, EOFError) as exc:
            raise InvalidInputError(
                f"docker-archive {self._path}: not a readable tar (truncated?): {exc}"
            ) from exc
        except OSError as exc:
            raise InvalidInputError(f"docker-archive {self._path}: {exc}") from exc
        return members

    def _resolve(self, name: str) -> tarfile.TarInfo:
        """The regular member ``name`` names, following symlinks and hard links inside the tar."""
        current = _member_name(name)
        for _ in range(_MAX_LINKS):
            info = self._members.get(current)
            if info is None:
                raise InvalidInputError(
                    f"docker-archive {self._path}: manifest.json names member {name!r}, "
                    "which the archive does not hold"
                )
            if info.isreg():
                return info
            if info.issym():
                current = _member_name(posixpath.join(posixpath.dirname(current), info.linkname))
            elif info.islnk():
                current = _member_name(info.linkname)
            else:
                raise InvalidInputError(
                    f"docker-archive {self._path}: member {name!r} is not a regular file"
                )
        raise InvalidInputError(f"docker-archive {self._path}: member {name!r}: too many links")

    def _read(self, info: tarfile.TarInfo, limit: int = _MAX_JSON) -> bytes:
        """The whole (small) member ``info``."""
        if info.size > limit:
            raise InvalidInputError(
                f"docker-archive {self._path}: member {info.name} is over {limit} bytes"
            )
        with open(self._path, "rb") as f:
            f.seek(info.offset_data)
            data = f.read(info.size)
        if len(data) != info.size:
            raise InvalidInputError(f"docker-archive {self._path}: member {info.name} truncated")
        return data

    def _head(self, info: tarfile.TarInfo, n: int) -> bytes:
        """The first ``n`` bytes of member ``info`` (fewer if it is shorter)."""
        with open(self._path, "rb") as f:
            f.seek(info.offset_data)
            return f.read(min(n, info.size))

    def _read_manifest_json(self) -> list[_Entry]:
        """The entries of manifest.json, every member they name checked to be present."""
        info = self._members.get(_MANIFEST_JSON)
        if info is None or not info.isreg():
            raise InvalidInputError(
                f"docker-archive {self._path}: no manifest.json (not a docker-archive?)"
            )
        what = f"docker-archive {self._path}: manifest.json"
        try:
            doc = json.loads(self._read(info))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"{what}: not JSON: {exc}") from exc
        if not isinstance(doc, list):
            raise InvalidInputError(f"{what}: not a JSON list")
        entries: list[_Entry] = []
        for i, item in enumerate(doc):
            if not isinstance(item, dict):
                raise InvalidInputError(f"{what}: entry {i} is not an object")
            config = item.get("Config")
            layers = item.get("Layers")
            tags = item.get("RepoTags") or []
            if not isinstance(config, str):
                raise InvalidInputError(f"{what}: entry {i} has no Config string")
            if not isinstance(layers, list) or not all(isinstance(x, str) for x in layers):
                raise InvalidInputError(f"{what}: entry {i}: Layers is not a list of strings")
            if not isinstance(tags, list) or not all(isinstance(x, str) for x in tags):
                raise InvalidInputError(f"{what}: entry {i}: RepoTags is not a list of strings")
            for member in (config, *layers):
                self._resolve(member)
            entries.append(_Entry(config, tuple(layers), tuple(tags)))
        return entries

    def _choose(self, ref: str | None) -> _Entry:
        """The entry ``ref`` names (see the class docstring)."""
        where = f"docker-archive {self._path}"
        if ref is None:
            if not self._entries:
                raise NotFoundError(f"{where}: the archive holds no image")
            if len(self._entries) > 1:
                raise InvalidInputError(
                    f"{where}: the archive holds {len(self._entries)} images; name one "
                    "(docker-archive:PATH:REF)"
                )
            return self._entries[0]
        if ref.startswith("@") and ref[1:].isdigit():  # skopeo's docker-archive:PATH:@N
            n = int(ref[1:])
            if n >= len(self._entries):
                raise NotFoundError(f"{where}: no image @{n} ({len(self._entries)} in the archive)")
            return self._entries[n]
        want = _familiar(ref)
        if want is None:
            raise InvalidInputError(f"{where}: invalid image reference {ref!r}")
        found = [e for e in self._entries if want in {_familiar(t) for t in e.repo_tags}]
        if not found:
            raise NotFoundError(f"{where}: no image tagged {ref!r}")
        if len(found) > 1:
            raise InvalidInputError(f"{where}: {len(found)} images are tagged {ref!r}")
        return found[0]

    # -- the synthesised manifest --------------------------------------------------------------

    def _hash(self, info: tarfile.TarInfo) -> Digest:
        """The sha256 of member ``info`` as stored."""
        hasher = Hasher()
        stream = FileBlobStream(
            self._path, info.offset_data, info.size, f"docker-archive {self._path}: {info.name}"
        )
        try:
            for chunk in stream:
                hasher.update(chunk)
        finally:
            stream.close()
        return hasher.digest()

    def _build(self) -> Manifest:
        """Hash config and layers once and build the Docker schema2 manifest of the entry."""
        with self._lock:
            if self._manifest is not None:
                return self._manifest
            config_info = self._resolve(self._entry.config)
            config_digest = Digest.of(self._read(config_info))
            blobs = {config_digest: config_info}
            layers: list[Descriptor] = []
            for member in self._entry.layers:
                info = self._resolve(member)
                digest = self._hash(info)
                gzip = self._head(info, 2) == _GZIP_MAGIC
                layers.append(
                    Descriptor(
                        mt.DOCKER_LAYER_GZIP if gzip else mt.DOCKER_LAYER_TAR, digest, info.size
                    )
                )
                blobs[digest] = info
            config = Descriptor(mt.DOCKER_CONFIG, config_digest, config_info.size)
            self._manifest = Manifest.build(mt.DOCKER_MANIFEST_V2, config, layers)
            self._blobs = blobs
            return self._manifest

    # -- ImageSource ---------------------------------------------------------------------------

    def get_manifest(self, ref: str | Digest | None = None) -> tuple[bytes, str, Digest]:
        """The synthesised manifest of the chosen image (``ref`` None, or its own digest)."""
        if isinstance(ref, str) and self._choose(ref) is not self._entry:
            return DockerArchiveSource(self._path, ref, self._name).get_manifest()
        manifest = self._build()
        if isinstance(ref, Digest) and ref != manifest.digest:
            raise NotFoundError(
                f"docker-archive {self._path}: no manifest {ref} (the image's is {manifest.digest})"
            )
        return manifest.raw, manifest.media_type, manifest.digest

    def open_blob(self, desc: Descriptor, offset: int = 0) -> FileBlobStream:
        """The stored bytes of the config or layer ``desc.digest`` from ``offset``, unverified."""
        self._build()
        info = self._blobs.get(desc.digest)
        if info is None:
            raise NotFoundError(f"docker-archive {self._path}: no blob {desc.digest}")
        if offset < 0 or offset > info.size:
            raise InvalidInputError(
                f"docker-archive {self._path}: offset {offset} outside blob {desc.digest}"
            )
        what = f"blob {desc.digest} from docker-archive {self._path}"
        return FileBlobStream(self._path, info.offset_data + offset, info.size - offset, what)

    def close(self) -> None:
        """Nothing stays open between calls; present for the protocol. Idempotent."""


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

    def _blobs_dir(self) -> Path:
        with self._lock:
            if self._done:
                raise InvalidInputError(
                    f"docker-archive {self._path}: already committed or aborted"
                )
            if self._staging is None:
                parent = self._path.parent
                parent.mkdir(parents=True, exist_ok=True)
                self._staging = Path(
                    tempfile.mkdtemp(prefix=f".{self._path.name}.staging-", dir=parent)
                )
            blobs = self._staging / "blobs"
            blobs.mkdir(exist_ok=True)
            return blobs

    def _blob_path(self, digest: Digest) -> Path:
        return self._blobs_dir() / digest.algorithm / digest.encoded

    def reuse_blob(self, desc: Descriptor) -> bool:
        """True when this copy has staged the blob already."""
        return self._blob_path(desc.digest).is_file()

    def put_blob(self, desc: Descriptor, open_at: BlobOpener) -> None:
        """Stream the blob from offset 0 into staging, verified; visible only when complete."""
        final = self._blob_path(desc.digest)
        if final.is_file():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        verifier = Verifier(desc.digest, desc.size, what=f"blob {desc.digest} for {self._name}")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{desc.digest.encoded}.", dir=final.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in open_at(0):
                    verifier.update(chunk)
                    out.write(chunk)
            verifier.verify()
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

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
            staged.parent.mkdir(parents=True, exist_ok=True)
            staged.write_bytes(raw)
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
            _fsync_dir(parent)
        except BaseException:
            self.abort()
            raise
        self._cleanup()

    def _cleanup(self) -> None:
        with self._lock:
            self._done = True
            staging, self._staging = self._staging, None
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)

    def abort(self) -> None:
        """Remove staging and any temporary tar; ``PATH`` is left as it was. Idempotent."""
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


def _fsync_dir(path: Path) -> None:
    """fsync a directory so a rename in it is durable (best effort where unsupported)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
