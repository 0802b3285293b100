"""The OCI image layout transport (``oci:PATH[:REF]``): a directory of blobs and ``index.json``.

A layout (image-spec ``image-layout.md``) is ``oci-layout`` (``{"imageLayoutVersion": …}``),
``index.json`` (an OCI index whose entries are named by the
``org.opencontainers.image.ref.name`` annotation) and ``blobs/ALG/HEX``, one file per blob.

:class:`OciLayoutSource` reads documents and blobs as they are (unverified: the engine and the
destination verify). :class:`OciLayoutDestination` writes blobs through a resumable, verifying
writer, the store's own ingest (:class:`~lorry.transports.files.DirectoryBlobs`): partial data
lives under ``PATH/.lorry-ingest/ALG/HEX.data`` (lorry's own directory inside the layout, under
a per-blob lock), is re-hashed when a later attempt opens it, and is renamed into ``blobs/``
only when its size and digest match. ``index.json`` changes only in :meth:`commit`, by an
atomic rename, so a failed or aborted copy never leaves an entry naming missing content. The
directory, ``oci-layout`` and ``blobs/`` are made at the first write, not at open, and an abort
removes them again while they hold no blob: a copy that fails early leaves no empty layout.
The source checks a blob read from its start against its name, so a damaged file is named.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import Digest, Verifier
from lorry.errors import (
    IntegrityError,
    InvalidInputError,
    LorryError,
    NotFoundError,
    StoreError,
)
from lorry.oci import MAX_MANIFEST_SIZE, Descriptor, parse_manifest
from lorry.oci._json import parse_json
from lorry.store.fsutil import atomic_write, os_error
from lorry.store.ingest import remove_leftovers
from lorry.transports.files import DirectoryBlobs, FileBlobStream, write_blob
from lorry.transports.protocols import BlobOpener, BlobStream, DestinationProperties, WaitHook

__all__ = [
    "INGEST_DIR",
    "LAYOUT_VERSION",
    "REF_NAME",
    "OciLayoutDestination",
    "OciLayoutSource",
    "blob_path",
    "read_index",
]

#: The annotation that names an entry of ``index.json`` (the ``REF`` of ``oci:PATH:REF``).
REF_NAME = "org.opencontainers.image.ref.name"
#: The ``imageLayoutVersion`` lorry writes.
LAYOUT_VERSION = "1.0.0"
#: lorry's directory of partial blobs inside a layout it writes.
INGEST_DIR = ".lorry-ingest"

_MANIFEST_TYPES = frozenset(
    {mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST_V2, mt.DOCKER_MANIFEST_LIST}
)


def blob_path(layout: Path, digest: Digest) -> Path:
    """Where the blob ``digest`` lives in the layout at ``layout``."""
    return layout / "blobs" / digest.algorithm / digest.encoded


def _load_json(path: Path, what: str) -> Any:
    """The JSON in ``path``; InvalidInputError naming the file when missing or malformed."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError(f"{what}: {path} is missing") from None
    except OSError as exc:
        raise os_error(exc, "reading", path) from exc
    try:
        return parse_json(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{what}: {path} is not valid JSON: {exc}") from None


def _check_layout_file(layout: Path) -> None:
    """Raise InvalidInputError unless ``layout/oci-layout`` names an image layout version."""
    path = layout / "oci-layout"
    obj = _load_json(path, f"OCI layout {layout}")
    if not isinstance(obj, dict) or not isinstance(obj.get("imageLayoutVersion"), str):
        raise InvalidInputError(f"OCI layout {layout}: {path} has no imageLayoutVersion string")


def read_index(layout: Path) -> tuple[dict[str, Any], list[Descriptor]]:
    """The layout's ``index.json`` as a JSON object and its entries as descriptors."""
    path = layout / "index.json"
    obj = _load_json(path, f"OCI layout {layout}")
    if not isinstance(obj, dict):
        raise InvalidInputError(f"OCI layout {layout}: {path} is not a JSON object")
    entries = obj.get("manifests", [])
    if not isinstance(entries, list):
        raise InvalidInputError(f"OCI layout {layout}: {path}: 'manifests' is not a list")
    descs = [Descriptor.from_dict(e, f"{path} manifests[{i}]") for i, e in enumerate(entries)]
    return obj, descs


def _ref_name(desc: Descriptor) -> str | None:
    return desc.annotations.get(REF_NAME)


class OciLayoutSource:
    """Read an image from an OCI layout directory (see the module docstring)."""

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self.path = Path(path)
        self.ref = ref
        self._name = name
        if not self.path.is_dir():
            raise NotFoundError(f"OCI layout {self.path}: no such directory")
        _check_layout_file(self.path)
        _, self._entries = read_index(self.path)

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it."""
        return self._name

    @property
    def entries(self) -> list[Descriptor]:
        """The entries of ``index.json``, in file order."""
        return list(self._entries)

    def _select(self, ref: str | None) -> Descriptor:
        if ref is None:
            if len(self._entries) == 1:
                return self._entries[0]
            if not self._entries:
                raise NotFoundError(f"OCI layout {self.path}: index.json names no image")
            raise InvalidInputError(
                f"OCI layout {self.path}: no reference given and index.json holds "
                f"{len(self._entries)} images; name one as oci:{self.path}:REF"
            )
        found = [e for e in self._entries if _ref_name(e) == ref]
        if not found:
            raise NotFoundError(f"OCI layout {self.path}: no image named {ref!r} in index.json")
        if len(found) > 1:
            raise InvalidInputError(
                f"OCI layout {self.path}: reference {ref!r} names {len(found)} images in index.json"
            )
        return found[0]

    def _read_document(self, digest: Digest) -> bytes:
        path = blob_path(self.path, digest)
        try:
            size = path.stat().st_size
            if size > MAX_MANIFEST_SIZE:
                raise InvalidInputError(
                    f"OCI layout {self.path}: document {digest} is {size} bytes, over the "
                    f"{MAX_MANIFEST_SIZE}-byte limit"
                )
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"OCI layout {self.path}: document {digest}: {path} does not exist"
            ) from None
        except OSError as exc:
            raise os_error(exc, "reading", path) from exc

    def _media_type_of(self, raw: bytes, digest: Digest) -> str:
        for e in self._entries:
            if e.digest == digest:
                return e.media_type
        try:
            obj = parse_json(raw)
        except ValueError:
            obj = None
        if isinstance(obj, dict) and isinstance(obj.get("mediaType"), str):
            return str(obj["mediaType"])
        try:
            return parse_manifest(raw).media_type
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"OCI layout {self.path}: blob {digest} is not a manifest or index: {exc}"
            ) from None

    def get_manifest(self, ref: str | Digest | None = None) -> tuple[bytes, str, Digest]:
        """A document's bytes, media type and digest (computed from the bytes, unverified).

        ``None`` selects the entry of ``index.json`` named by the source's reference (or the
        only entry when there is no reference); a string selects an entry by name; a
        :class:`Digest` reads ``blobs/ALG/HEX``.
        """
        if isinstance(ref, Digest):
            raw = self._read_document(ref)
            return raw, self._media_type_of(raw, ref), Digest.of(raw, ref.algorithm)
        entry = self._select(self.ref if ref is None else ref)
        raw = self._read_document(entry.digest)
        return raw, entry.media_type, Digest.of(raw, entry.digest.algorithm)

    def open_blob(self, desc: Descriptor, offset: int = 0) -> BlobStream:
        """The blob's bytes from ``offset``, unverified; NotFoundError naming a missing file."""
        if offset < 0 or offset > desc.size:
            raise InvalidInputError(
                f"OCI layout {self.path}: blob {desc.digest}: offset {offset} outside the blob"
            )
        path = blob_path(self.path, desc.digest)
        what = f"blob {desc.digest} in OCI layout {self.path}"
        # From the start the file is checked against its name: a damaged layout is named.
        verifier = Verifier(desc.digest, desc.size, f"{what} ({path})") if offset == 0 else None
        return FileBlobStream(path, offset, what=what, verifier=verifier)

    def close(self) -> None:
        """Nothing to release: every read opens and closes its own file."""


class OciLayoutDestination:
    """Write an image into an OCI layout directory (see the module docstring)."""

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self.path = Path(path)
        self.ref = ref
        self._name = name
        self._top: Descriptor | None = None
        self._done = False
        self._lock = threading.Lock()
        self._blobs = DirectoryBlobs(self.path, INGEST_DIR)
        #: What this copy created, in order (removed again by an abort that wrote no blob).
        self._created: list[Path] = []
        self._ready = False
        if self.path.exists() and not self.path.is_dir():
            raise InvalidInputError(f"OCI layout {self.path}: exists and is not a directory")
        try:
            if self.path.is_dir() and any(self.path.iterdir()):
                if not (self.path / "oci-layout").exists():
                    raise InvalidInputError(
                        f"OCI layout {self.path}: directory is not empty and has no "
                        "oci-layout file; refusing to write into it"
                    )
                _check_layout_file(self.path)
                if (self.path / "index.json").exists():
                    read_index(self.path)  # refuse a broken index.json before any write
        except OSError as exc:
            raise os_error(exc, "opening OCI layout", self.path) from exc

    def _ensure(self) -> None:
        """Make the directory, ``oci-layout`` and ``blobs/`` at the first write, not at open.

        A copy that fails before it writes anything (while planning) leaves no directory.
        """
        with self._lock:
            if self._ready:
                return
            layout_file = self.path / "oci-layout"
            try:
                missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
                self.path.mkdir(parents=True, exist_ok=True)
                self._created.extend(reversed(missing))
                if not layout_file.exists():
                    data = json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode()
                    atomic_write(layout_file, data)
                    self._created.append(layout_file)
                for sub in (self.path / "blobs", self.path / "blobs" / "sha256"):
                    if not sub.exists():
                        sub.mkdir(exist_ok=True)
                        self._created.append(sub)
            except OSError as exc:
                raise os_error(exc, "creating OCI layout", self.path) from exc
            self._ready = True

    def _undo_created(self) -> None:
        """Remove what this copy created while nothing else is inside (no blob, no partial)."""
        created = set(self._created)
        if not created:
            return
        try:
            if any(p not in created for p in self.path.rglob("*") if not p.is_dir()):
                return  # blobs or partial data to keep (a rerun resumes from them)
            for path in reversed(self._created):
                if path.is_dir():
                    path.rmdir()
                else:
                    path.unlink()
        except OSError:
            return  # another copy writes here too: leave the rest
        self._created.clear()

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it."""
        return self._name

    @property
    def properties(self) -> DestinationProperties:
        """OCI and Docker schema2 documents stored unchanged; present blobs are reused."""
        return DestinationProperties(
            manifest_types=_MANIFEST_TYPES,
            accepts_index=True,
            reuse=frozenset({"present"}),
        )

    def reuse_blob(self, desc: Descriptor) -> bool:
        """True when ``blobs/ALG/HEX`` exists with the descriptor's size."""
        try:
            return blob_path(self.path, desc.digest).stat().st_size == desc.size
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise os_error(exc, "checking blob", blob_path(self.path, desc.digest)) from exc

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        """Write the blob through the resumable, verifying ingest (:class:`DirectoryBlobs`).

        IntegrityError (after deleting the partial data) when size or digest do not match.
        Empty partial-data directories are removed at commit or abort, not here: other blobs
        of this copy are being written into them at the same time.
        """
        self._ensure()
        write_blob(self._blobs.writer(desc, on_wait), open_at)

    def _tidy_ingest(self) -> None:
        """Remove what committed blobs left in lorry's partial-data directory (a lock file a
        kill left behind), then the directories when they hold nothing."""
        root = self.path / INGEST_DIR
        if not root.is_dir():
            return
        remove_leftovers(self._blobs.layout, committed_only=True)
        with contextlib.suppress(OSError):
            for sub in root.iterdir():
                with contextlib.suppress(OSError):
                    sub.rmdir()
            root.rmdir()

    def put_manifest(
        self, raw: bytes, media_type: str, digest: Digest, *, top: bool = False
    ) -> None:
        """Store a document as a blob (its digest checked); ``top`` names it in index.json."""
        if Digest.of(raw, digest.algorithm) != digest:
            raise IntegrityError(
                f"document {digest} for OCI layout {self.path}: digest mismatch: got "
                f"{Digest.of(raw, digest.algorithm)}"
            )
        self._ensure()
        target = blob_path(self.path, digest)
        if not (target.exists() and target.stat().st_size == len(raw)):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise os_error(exc, "creating", target.parent) from exc
            atomic_write(target, raw)
        if top:
            self._top = Descriptor(media_type=media_type, digest=digest, size=len(raw))

    def commit(self) -> None:
        """Point the reference at the top document by atomically rewriting ``index.json``.

        Other entries are kept; an entry with the same ref name is replaced (with no
        reference, an unnamed entry for the same digest is replaced).
        """
        with self._lock:
            if self._done:
                raise StoreError(f"OCI layout {self.path}: copy already committed or aborted")
            if self._top is None:
                raise StoreError(f"OCI layout {self.path}: commit before the top document")
            index_path = self.path / "index.json"
            obj: dict[str, Any]
            entries: list[Descriptor]
            if index_path.exists():
                obj, entries = read_index(self.path)
            else:
                obj, entries = {}, []
            top = self._top
            if self.ref is None:
                kept = [e for e in entries if not (_ref_name(e) is None and e.digest == top.digest)]
                new = top
            else:
                kept = [e for e in entries if _ref_name(e) != self.ref]
                new = Descriptor(
                    media_type=top.media_type,
                    digest=top.digest,
                    size=top.size,
                    annotations={REF_NAME: self.ref},
                )
            out: dict[str, Any] = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX}
            out.update({k: v for k, v in obj.items() if k not in ("manifests",)})
            out["schemaVersion"] = 2
            out.setdefault("mediaType", mt.OCI_INDEX)
            out["manifests"] = [e.to_dict() for e in [*kept, new]]
            atomic_write(index_path, json.dumps(out, indent=2).encode() + b"\n")
            self._done = True
        self._tidy_ingest()

    def abort(self) -> None:
        """Forget the copy: index.json stays as it was; complete blobs and partials remain.

        A directory this copy created and wrote no blob into is removed again.
        """
        with self._lock:
            self._done = True
        with contextlib.suppress(LorryError, OSError):
            self._tidy_ingest()
        self._undo_created()
