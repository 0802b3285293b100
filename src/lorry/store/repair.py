"""Rebuild a damaged store database from the blobs on disk (``lorry fsck --repair``).

The blobs are the truth: each is re-hashed (one whose bytes do not match its name is moved out
of ``blobs/`` into the quarantine directory, never deleted), the JSON ones are parsed with
:mod:`lorry.oci` to find image manifests, indexes and schema1 manifests, and every manifest
whose config and layers are present and sound becomes an image again, its layers re-registered
(DiffIDs recomputed from the bytes) and its manifest and indexes linked. References, which
only the database holds, come back from whatever of the damaged database can still be read,
then from ``io.containerd.image.name`` / ``org.opencontainers.image.ref.name`` annotations
naming a full reference; the rest is reported lost.

Crash safety: the new database is built in one transaction in a temporary file, closed,
fsynced, and only then renamed to ``lorry.db`` after the damaged file (with its ``-wal`` and
``-shm``) was moved into ``damaged-<UTC time>/``. A kill at any moment leaves either the
damaged (or missing) database, which is still reported, or the repaired one.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lorry.digest import ChainID, DiffID, Digest
from lorry.errors import (
    IntegrityError,
    InvalidInputError,
    InvalidReference,
    LorryError,
    NotFoundError,
    StoreError,
)
from lorry.oci import MAX_MANIFEST_SIZE, Index, Manifest, Schema1Manifest, parse_manifest
from lorry.oci.schema1_config import config_from_schema1, layers_to_fetch
from lorry.platform import Platform
from lorry.reference import parse
from lorry.store.content import LocalContentStore
from lorry.store.db import Database, database_damage, open_read_only
from lorry.store.distmeta import DistributionMetadata
from lorry.store.fsutil import fsync_dir, os_error
from lorry.store.images import ImageStore, diff_ids_of, parse_config
from lorry.store.ingest import READ_CHUNK
from lorry.store.layers import LayerStore
from lorry.store.locks import FileLock, WaitHook
from lorry.store.references import ReferenceStore
from lorry.store.root import StoreLayout

__all__ = ["REF_ANNOTATIONS", "RepairReport", "repair"]

#: Annotations that may name a full reference (``name:tag``) of a manifest or index entry.
REF_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
_DB_FILES = ("", "-wal", "-shm")


@dataclass
class RepairReport:
    """What :func:`repair` found, rebuilt, recovered and lost.

    ``damage`` is None when the database was sound and nothing was done.
    """

    damage: str | None = None
    #: The directory the damaged database (and corrupt blobs) were moved into.
    moved_to: Path | None = None
    #: The database files (``lorry.db``, ``-wal``, ``-shm``) moved there, as they are now named.
    moved: list[Path] = field(default_factory=list)
    blobs: int = 0
    #: Blobs whose bytes do not match their name: (name, what they hash to); quarantined.
    corrupt: list[tuple[Digest, str]] = field(default_factory=list)
    images: list[Digest] = field(default_factory=list)
    layers: int = 0
    manifests: int = 0
    indexes: int = 0
    #: Manifests that could not become an image, and why.
    skipped: list[tuple[Digest, str]] = field(default_factory=list)
    #: References restored (from the damaged database, else from annotations).
    references: list[str] = field(default_factory=list)
    distmeta: int = 0
    #: Sound blobs that no rebuilt image uses (kept; ``lorry prune`` removes them).
    unreferenced: int = 0
    lost: list[str] = field(default_factory=list)


@dataclass
class _Salvage:
    """Rows still readable from the damaged database (validated before use)."""

    refs: list[tuple[str, str, str, str]] = field(default_factory=list)
    distmeta: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    created: dict[str, float] = field(default_factory=dict)
    refs_readable: bool = False
    distmeta_readable: bool = False
    created_readable: bool = False


@dataclass
class _Scan:
    """The sound blobs and the documents among them."""

    sizes: dict[Digest, int] = field(default_factory=dict)
    documents: dict[Digest, Manifest | Index | Schema1Manifest] = field(default_factory=dict)


class _Stores:
    """The store classes over the temporary database being built."""

    def __init__(self, layout: StoreLayout, db: Database) -> None:
        self.db = db
        self.content = LocalContentStore(layout, db)
        self.layers = LayerStore(db, self.content)
        self.images = ImageStore(db, self.content, self.layers)
        self.refs = ReferenceStore(db)
        self.distmeta = DistributionMetadata(db)


def repair(layout: StoreLayout, *, on_wait: WaitHook | None = None) -> RepairReport:
    """Rebuild the database of the store at ``layout`` if it is damaged; report what happened.

    Takes the store lock exclusively (as prune does), so no pull or push is inside the store.
    """
    layout.create()
    if database_damage(layout.database, layout.has_blobs) is None:
        return RepairReport()
    lock = FileLock(layout.store_lock)
    lock.acquire(on_wait=on_wait)
    try:
        damage = database_damage(layout.database, layout.has_blobs)
        if damage is None:  # another repair finished while we waited
            return RepairReport()
        report = RepairReport(damage=damage, moved_to=_aside_dir(layout.root))
        _remove_stale_temp(layout)
        salvage = _salvage(layout.database)
        tmp = layout.root / f".lorry.db.repair-{os.getpid()}.tmp"
        db = Database(tmp)
        try:
            try:
                stores = _Stores(layout, db)
                scan = _scan(layout, stores.content, report)
                with db.tx() as conn:
                    _rebuild(stores, conn, scan, salvage, report)
            finally:
                db.close()
            _seal(tmp)
        except BaseException:
            _remove_stale_temp(layout)  # the damaged database stays as it was
            raise
        report.moved = _swap(layout, tmp, report.moved_to)
        _lost(report, salvage)
        return report
    finally:
        lock.release()


def _aside_dir(root: Path) -> Path:
    """A new, unused ``damaged-<UTC time>`` directory name under the root."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path, n = root / f"damaged-{stamp}", 1
    while path.exists():
        n += 1
        path = root / f"damaged-{stamp}-{n}"
    return path


def _remove_stale_temp(layout: StoreLayout) -> None:
    """Delete what an earlier, killed repair left of its temporary database."""
    for entry in layout.root.glob(".lorry.db.repair-*.tmp*"):
        try:
            entry.unlink()
        except OSError as exc:
            raise os_error(exc, "deleting", entry) from exc


def _salvage(path: Path) -> _Salvage:
    """Read what still can be read of the damaged database, without writing to it."""
    out = _Salvage()
    try:
        with open(path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00":
                return out
        conn = open_read_only(path)
    except (OSError, sqlite3.Error):
        return out
    try:
        try:
            rows = conn.execute("SELECT name, tag, digest, image_id FROM refs").fetchall()
            out.refs = [(str(n), str(t), str(d), str(i)) for n, t, d, i in rows]
            out.refs_readable = True
        except sqlite3.Error:
            pass
        try:
            rows = conn.execute(
                "SELECT diff_id, blob_digest, registry, repository, hmac FROM distmeta"
            ).fetchall()
            out.distmeta = [(str(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in rows]
            out.distmeta_readable = True
        except sqlite3.Error:
            pass
        try:
            rows = conn.execute("SELECT id, created FROM images").fetchall()
            out.created = {str(r[0]): float(r[1]) for r in rows}
            out.created_readable = True
        except (sqlite3.Error, TypeError, ValueError):
            pass
    finally:
        conn.close()
    return out


def _scan(layout: StoreLayout, content: LocalContentStore, report: RepairReport) -> _Scan:
    """Hash every blob (quarantining corrupt ones) and parse the documents among them."""
    scan = _Scan()
    for digest in list(content.walk()):
        report.blobs += 1
        path = layout.blob(digest)
        h = hashlib.new(digest.algorithm)
        head = b""
        size = 0
        try:
            with open(path, "rb") as f:
                while chunk := f.read(READ_CHUNK):
                    if size < MAX_MANIFEST_SIZE:
                        head += chunk[: MAX_MANIFEST_SIZE + 1 - len(head)]
                    size += len(chunk)
                    h.update(chunk)
        except OSError as exc:
            raise os_error(exc, "reading", path) from exc
        if h.hexdigest() != digest.hex:
            report.corrupt.append((digest, f"{digest.algorithm}:{h.hexdigest()}"))
            assert report.moved_to is not None
            _quarantine(path, report.moved_to / "blobs" / digest.algorithm / digest.hex)
            continue
        scan.sizes[digest] = size
        if size <= MAX_MANIFEST_SIZE and head.lstrip()[:1] == b"{":
            with contextlib.suppress(LorryError):  # a config: found through the manifests
                scan.documents[digest] = parse_manifest(head)
    return scan


def _quarantine(src: Path, dst: Path) -> None:
    """Move a corrupt blob out of ``blobs/`` (kept for the user, never deleted)."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        for made in (dst.parent.parent.parent, dst.parent.parent, dst.parent):
            fsync_dir(made.parent)  # the new directories themselves survive a power cut
        os.rename(src, dst)
        fsync_dir(dst.parent)
        fsync_dir(src.parent)
    except OSError as exc:
        raise os_error(exc, "moving corrupt blob aside", src) from exc


def _rebuild(
    stores: _Stores, conn: sqlite3.Connection, scan: _Scan, salvage: _Salvage, report: RepairReport
) -> None:
    """Fill the new database (inside the caller's one transaction)."""
    media: dict[Digest, str] = {d: doc.media_type for d, doc in scan.documents.items()}
    for doc in scan.documents.values():
        if isinstance(doc, Manifest):
            media.setdefault(doc.config.digest, doc.config.media_type)
    for digest, size in scan.sizes.items():
        stores.content.record(digest, size, media.get(digest), None, None)
    image_of: dict[Digest, Digest] = {}
    for digest in sorted(scan.documents, key=str):
        doc = scan.documents[digest]
        if isinstance(doc, Index):
            continue
        conn.execute("SAVEPOINT image")
        try:
            image_of[digest] = _register(stores, digest, doc, scan)
        except LorryError as exc:
            conn.execute("ROLLBACK TO image")
            report.skipped.append((digest, str(exc)))
        conn.execute("RELEASE image")
    for digest, doc in scan.documents.items():
        if isinstance(doc, Index):
            reached = _reached(digest, scan, image_of, set())
            for image in reached:
                stores.images.add_manifest(image, digest, doc.media_type)
            report.indexes += bool(reached)
    report.manifests = len(image_of)
    report.images = sorted(set(image_of.values()), key=str)
    report.layers = len(stores.layers.all())
    _restore_refs(stores, salvage, report)
    _annotated_refs(stores, scan, image_of, report)
    for diff, blob, registry, repository, hmac in salvage.distmeta:
        try:
            stores.distmeta.record(
                Digest.parse(diff), Digest.parse(blob), registry, repository, hmac=hmac
            )
            report.distmeta += 1
        except (IntegrityError, InvalidInputError):
            continue  # not a pair of a rebuilt layer
    for image in report.images:
        if str(image) in salvage.created:
            conn.execute(
                "UPDATE images SET created = ? WHERE id = ?",
                (salvage.created[str(image)], str(image)),
            )
    used = {str(d) for d in report.images} | {
        str(r[0])
        for r in conn.execute(
            "SELECT digest FROM image_manifests UNION SELECT blob_digest FROM layers"
        )
    }
    report.unreferenced = sum(1 for d in scan.sizes if str(d) not in used)


def _register(
    stores: _Stores, digest: Digest, doc: Manifest | Schema1Manifest, scan: _Scan
) -> Digest:
    """Register the layers and image of one manifest; raise naming what is missing."""
    if isinstance(doc, Schema1Manifest):
        layers = [(layer.digest, layer.media_type) for layer in layers_to_fetch(doc)]
        diffs = _chain(stores, layers, scan)
        config = Digest.of(config_from_schema1(doc, diffs))
        if config not in scan.sizes:
            raise NotFoundError(f"rebuilt schema1 config {config} is not among the blobs")
    else:
        config = doc.config.digest
        if config not in scan.sizes:
            raise NotFoundError(f"config {config} is missing or corrupt")
        want = diff_ids_of(parse_config(stores.content.read_bytes(config), f"config {config}"))
        if len(want) != len(doc.layers):
            raise InvalidInputError(
                f"config {config} lists {len(want)} layers, the manifest {len(doc.layers)}"
            )
        diffs = _chain(stores, [(d.digest, d.media_type) for d in doc.layers], scan)
        if diffs != want:
            raise IntegrityError(f"layers do not match the DiffIDs of config {config}")
    image = stores.images.create(config)
    stores.images.add_manifest(image.id, digest, doc.media_type)
    return image.id


def _chain(stores: _Stores, layers: Iterable[tuple[Digest, str]], scan: _Scan) -> list[DiffID]:
    """Register layer blobs bottom to top; their DiffIDs (computed from the bytes)."""
    parent: ChainID | None = None
    diffs: list[DiffID] = []
    for blob, media_type in layers:
        if blob not in scan.sizes:
            raise NotFoundError(f"layer {blob} is missing or corrupt")
        layer = stores.layers.register(blob, parent, media_type=media_type)
        parent = layer.chain_id
        diffs.append(layer.diff_id)
    return diffs


def _reached(
    digest: Digest, scan: _Scan, image_of: dict[Digest, Digest], seen: set[Digest]
) -> set[Digest]:
    """The rebuilt images an index leads to, through nested indexes too."""
    seen.add(digest)
    doc = scan.documents.get(digest)
    if not isinstance(doc, Index):
        return {image_of[digest]} if digest in image_of else set()
    out: set[Digest] = set()
    for entry in doc.manifests:
        if entry.digest not in seen:
            out |= _reached(entry.digest, scan, image_of, seen)
    return out


def _restore_refs(stores: _Stores, salvage: _Salvage, report: RepairReport) -> None:
    """Put back the references read from the damaged database whose image was rebuilt."""
    rebuilt = {str(d) for d in report.images}
    for name, tag, digest, image in salvage.refs:
        if image not in rebuilt:
            continue
        try:
            if parse(name).name != name:
                continue
            image_id = Digest.parse(image)
            if tag:
                stores.refs.add_tag(name, tag, image_id, force=False)
                report.references.append(f"{name}:{tag}")
            elif digest:
                stores.refs.add_digest(name, Digest.parse(digest), image_id)
                report.references.append(f"{name}@{digest}")
        except LorryError:
            continue


def _annotated_refs(
    stores: _Stores, scan: _Scan, image_of: dict[Digest, Digest], report: RepairReport
) -> None:
    """Tags named by annotations of stored manifests and index entries, where still free."""
    found: list[tuple[str, Digest]] = []
    for digest, doc in sorted(scan.documents.items(), key=lambda kv: str(kv[0])):
        if isinstance(doc, Manifest) and digest in image_of:
            found += [(text, image_of[digest]) for text in _ref_texts(doc.annotations)]
        if isinstance(doc, Index):
            for entry in doc.manifests:
                target = _entry_image(entry.digest, scan, image_of)
                if target is not None:
                    found += [(text, target) for text in _ref_texts(entry.annotations)]
    for text, image in found:
        try:
            ref = parse(text)
        except InvalidReference:
            continue
        if ref.tag is None or ref.digest is not None or stores.refs.get(ref.name, tag=ref.tag):
            continue
        stores.refs.add_tag(ref.name, ref.tag, image, force=False)
        report.references.append(f"{ref.name}:{ref.tag}")


def _ref_texts(annotations: Mapping[str, str]) -> list[str]:
    """Annotation values that name a full reference with a tag (a bare tag names no image)."""
    values = [annotations.get(k) for k in REF_ANNOTATIONS]
    return [v for v in values if v and ("/" in v or ":" in v)]


def _entry_image(digest: Digest, scan: _Scan, image_of: dict[Digest, Digest]) -> Digest | None:
    """The image an index entry names: its manifest's, or a nested index's host-platform one."""
    if digest in image_of:
        return image_of[digest]
    doc = scan.documents.get(digest)
    if isinstance(doc, Index):
        for entry in doc.matching(Platform.host()):
            if entry.digest in image_of:
                return image_of[entry.digest]
    return None


def _seal(tmp: Path) -> None:
    """Make the closed temporary database durable; it must hold everything (no WAL left)."""
    if Path(f"{tmp}-wal").exists():
        raise StoreError(f"repairing store: {tmp} still has a write-ahead log after closing")
    try:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(tmp.parent)
    except OSError as exc:
        raise os_error(exc, "writing", tmp) from exc


def _swap(layout: StoreLayout, tmp: Path, aside: Path | None) -> list[Path]:
    """Move the damaged database aside (db first, then its WAL), then rename the new one in.

    Between the two steps the store has no database while it holds blobs: still damage.
    """
    assert aside is not None
    root = layout.root
    old = [root / f"{layout.database.name}{s}" for s in _DB_FILES]
    old = [p for p in old if p.exists()]
    try:
        if old:
            aside.mkdir(exist_ok=True)
            fsync_dir(root)
            for src in old:
                os.rename(src, aside / src.name)
            fsync_dir(aside)
            fsync_dir(root)
        os.rename(tmp, layout.database)
        fsync_dir(root)
    except OSError as exc:
        raise os_error(exc, "replacing damaged database", layout.database) from exc
    return [aside / p.name for p in old]


def _lost(report: RepairReport, salvage: _Salvage) -> None:
    """Say what the damaged database held that the blobs could not give back."""
    if not salvage.refs_readable:
        found = len(report.references)
        report.lost.append(
            "tags and digest references (kept only in the database"
            + (f"; {found} recovered from annotations)" if found else "): tag or pull again")
        )
    else:
        missing = len(salvage.refs) - len(report.references)
        if missing > 0:
            report.lost.append(f"{missing} references whose image could not be rebuilt")
    if not salvage.distmeta_readable:
        report.lost.append(
            "distribution metadata (which registry and repository each layer came from): "
            "push checks the registry instead of mounting"
        )
    if not salvage.created_readable:
        report.lost.append("when each image entered the store (now the time of the repair)")
    if report.unreferenced:
        report.lost.append(
            f"DiffIDs of {report.unreferenced} blobs no rebuilt image uses (recomputed if used)"
        )
