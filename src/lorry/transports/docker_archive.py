"""The docker-archive transport: the tar that ``docker save`` writes and ``docker load`` reads.

A docker-archive holds ``manifest.json``, a list of images, each ``{"Config": member,
"RepoTags": [...], "Layers": [member, ...]}`` (bottom layer first). Docker before 25 names
members ``<hex>.json`` and ``<id>/layer.tar``; Docker 25 and later write an OCI layout in the
same tar (``oci-layout``, ``index.json``, ``blobs/sha256/…``) and name those blobs in
``manifest.json``; skopeo writes ``<hex>.json`` and ``<hex>.tar``. There is no registry
manifest in any of them, so :class:`DockerArchiveSource` synthesises a Docker schema2 manifest
whose layers are the members exactly as stored (digest and size of the stored bytes; gzip media
type when the member is gzip, plain tar otherwise).

:class:`DockerArchiveDestination` (in :mod:`~lorry.transports.docker_archive_writer`, re-exported
here) writes what Docker 20.10, current Docker and skopeo all load.
"""

from __future__ import annotations

import posixpath
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path

from lorry import mediatypes as mt
from lorry.digest import Digest, Hasher
from lorry.errors import (
    InvalidInputError,
    InvalidReference,
    NotFoundError,
)
from lorry.oci import Descriptor, Manifest
from lorry.oci._json import parse_json
from lorry.reference import parse_docker_ref
from lorry.transports.docker_archive_writer import DockerArchiveDestination
from lorry.transports.files import FileBlobStream

__all__ = ["DockerArchiveDestination", "DockerArchiveSource"]

_GZIP_MAGIC = b"\x1f\x8b"
_MANIFEST_JSON = "manifest.json"
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
            doc = parse_json(self._read(info))
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
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
