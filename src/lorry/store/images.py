"""The image store: images by ID (the config digest), their configs and their manifests.

An image row says which layer stack the image uses (its top ChainID, computed from the config's
``rootfs.diff_ids``) and holds one reference on that top layer. The config bytes are kept
verbatim in the content store; so are the manifests (and indexes) known to describe the image,
so that a push can send them byte-for-byte.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lorry.digest import ChainID, DiffID, Digest, chain_id
from lorry.errors import InvalidInputError, NotFoundError
from lorry.oci._json import parse_json
from lorry.store.content import LocalContentStore
from lorry.store.db import Database
from lorry.store.layers import LayerStore

__all__ = ["Image", "ImageStore", "parse_config"]


@dataclass(frozen=True, slots=True)
class Image:
    """One image: ``id`` is the config digest; ``created`` is when it entered this store."""

    id: Digest
    top_layer: ChainID | None
    created: float


def parse_config(raw: bytes, what: str = "image config") -> dict[str, Any]:
    """Parse an image config and check its ``rootfs`` (the part the store relies on)."""
    try:
        doc = parse_json(raw)
    except ValueError as exc:
        raise InvalidInputError(f"{what}: not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError(f"{what}: not a JSON object")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise InvalidInputError(f"{what}: invalid rootfs in image configuration")
    return doc


def diff_ids_of(config: dict[str, Any]) -> list[DiffID]:
    """The config's ``rootfs.diff_ids``, parsed."""
    return [DiffID(Digest.parse(str(d))) for d in config["rootfs"]["diff_ids"]]


def _image(row: Any) -> Image:
    top = ChainID(Digest.parse(row[1])) if row[1] else None
    return Image(Digest.parse(row[0]), top, float(row[2]))


class ImageStore:
    """Images in the store database; safe to use from many threads at once."""

    def __init__(self, db: Database, content: LocalContentStore, layers: LayerStore) -> None:
        self.db = db
        self.content = content
        self.layers = layers

    def create(self, config_digest: Digest) -> Image:
        """Record the image whose committed config blob is ``config_digest``; idempotent.

        Every layer of ``rootfs.diff_ids`` must be registered (as one chain) first; the
        config must not list more non-empty history entries than it has layers.
        """
        what = f"image config {config_digest}"
        config = parse_config(self.content.read_bytes(config_digest), what)
        diffs = diff_ids_of(config)
        history = config.get("history") or []
        built = [h for h in history if isinstance(h, dict) and not h.get("empty_layer")]
        if len(built) > len(diffs):
            raise InvalidInputError(f"{what}: history lists more layers than rootfs.diff_ids")
        top = chain_id(diffs) if diffs else None
        with self.db.tx() as conn:
            found = conn.execute(
                "SELECT id, top_layer, created FROM images WHERE id = ?", (str(config_digest),)
            ).fetchone()
            if found is not None:
                return _image(found)
            if top is not None:
                if self.layers.find(top) is None:
                    raise NotFoundError(f"{what}: layer {top} does not exist in the store")
                conn.execute(
                    "UPDATE layers SET refcount = refcount + 1 WHERE chain_id = ?", (str(top),)
                )
            now = time.time()
            conn.execute(
                "INSERT INTO images (id, top_layer, created) VALUES (?, ?, ?)",
                (str(config_digest), str(top) if top else None, now),
            )
        return Image(config_digest, top, now)

    def find(self, image_id: Digest) -> Image | None:
        """The image with ``image_id``, or None."""
        rows = self.db.query(
            "SELECT id, top_layer, created FROM images WHERE id = ?", (str(image_id),)
        )
        return _image(rows[0]) if rows else None

    def get(self, image_id: Digest) -> Image:
        """The image with ``image_id``; NotFoundError when absent."""
        image = self.find(image_id)
        if image is None:
            raise NotFoundError(f"image {image_id} not found in the store")
        return image

    def by_prefix(self, prefix: str) -> list[Image]:
        """Images whose ID (with or without ``sha256:``) starts with ``prefix``."""
        text = prefix if ":" in prefix else f"sha256:{prefix}"
        rows = self.db.query(
            "SELECT id, top_layer, created FROM images WHERE substr(id, 1, ?) = ?",
            (len(text), text),
        )
        return [_image(r) for r in rows]

    def all(self) -> list[Image]:
        """Every image, newest first."""
        rows = self.db.query("SELECT id, top_layer, created FROM images ORDER BY created DESC")
        return [_image(r) for r in rows]

    def config(self, image_id: Digest) -> dict[str, Any]:
        """The image's parsed config."""
        return parse_config(self.content.read_bytes(image_id), f"image config {image_id}")

    def add_manifest(self, image_id: Digest, digest: Digest, media_type: str) -> None:
        """Remember that the committed manifest or index ``digest`` describes the image."""
        if not self.content.exists(digest):
            raise NotFoundError(f"manifest {digest} is not in the content store")
        with self.db.tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO image_manifests VALUES (?, ?, ?)",
                (str(self.get(image_id).id), str(digest), media_type),
            )

    def manifests(self, image_id: Digest) -> list[tuple[Digest, str]]:
        """The manifests and indexes known to describe the image: (digest, media type)."""
        rows = self.db.query(
            "SELECT digest, media_type FROM image_manifests WHERE image_id = ?", (str(image_id),)
        )
        return [(Digest.parse(r[0]), str(r[1])) for r in rows]

    def children(self, image_id: Digest) -> list[Image]:
        """Images built on this one: their layer stack has this image's top layer below it."""
        image = self.get(image_id)
        if image.top_layer is None:
            return []
        out = []
        for other in self.all():
            if other.top_layer is None or other.top_layer == image.top_layer:
                continue
            if any(
                layer.chain_id == image.top_layer for layer in self.layers.chain(other.top_layer)
            ):
                out.append(other)
        return out

    def delete(self, image_id: Digest) -> bool:
        """Delete the image row (and its references and manifest rows); drop its layer ref."""
        with self.db.tx() as conn:
            image = self.find(image_id)
            if image is None:
                return False
            conn.execute("DELETE FROM refs WHERE image_id = ?", (str(image_id),))
            conn.execute("DELETE FROM image_manifests WHERE image_id = ?", (str(image_id),))
            conn.execute("DELETE FROM images WHERE id = ?", (str(image_id),))
            if image.top_layer is not None:
                conn.execute(
                    "UPDATE layers SET refcount = refcount - 1 WHERE chain_id = ?",
                    (str(image.top_layer),),
                )
        return True
