"""The reference store: ``name:tag`` and ``name@digest`` pointing at image IDs.

Names are fully qualified repository names (``docker.io/library/alpine``); callers normalise
them with :mod:`lorry.reference` first. A tag may be moved to another image; a digest
reference (the image's *repo digest*: the manifest or index digest it was pulled by) can
never be re-pointed, since a digest names exactly one thing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lorry.digest import Digest
from lorry.errors import InvalidInputError, NotFoundError
from lorry.store.db import Database

__all__ = ["Ref", "ReferenceStore"]


@dataclass(frozen=True, slots=True)
class Ref:
    """A stored reference: exactly one of ``tag`` and ``digest`` is set."""

    name: str
    tag: str | None
    digest: Digest | None
    image_id: Digest

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag else f"{self.name}@{self.digest}"


def _ref(row: tuple[Any, ...]) -> Ref:
    name, tag, digest, image = row
    return Ref(name, tag or None, Digest.parse(digest) if digest else None, Digest.parse(image))


class ReferenceStore:
    """References in the store database; safe to use from many threads at once."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add_tag(self, name: str, tag: str, image_id: Digest, *, force: bool = True) -> bool:
        """Point ``name:tag`` at ``image_id``; return True when something changed.

        Without ``force`` a tag already set to another image is an InvalidInputError.
        """
        return self._add(name, tag, "", image_id, force)

    def add_digest(self, name: str, digest: Digest, image_id: Digest) -> bool:
        """Record ``name@digest`` for ``image_id`` (the repo digest); True when new."""
        return self._add(name, "", str(digest), image_id, False)

    def _add(self, name: str, tag: str, digest: str, image_id: Digest, force: bool) -> bool:
        if not name or bool(tag) == bool(digest):
            raise InvalidInputError(f"reference {name!r}: want a name and a tag or a digest")
        key = (name, tag, digest)
        with self.db.tx() as conn:
            if (
                conn.execute("SELECT 1 FROM images WHERE id = ?", (str(image_id),)).fetchone()
                is None
            ):
                raise NotFoundError(f"image {image_id} not found in the store")
            row = conn.execute(
                "SELECT image_id FROM refs WHERE name = ? AND tag = ? AND digest = ?", key
            ).fetchone()
            if row is not None and row[0] == str(image_id):
                return False
            if row is not None and (digest or not force):
                what = f"{name}@{digest}" if digest else f"{name}:{tag}"
                raise InvalidInputError(
                    f"reference {what} is already set to image {row[0]}"
                    + ("" if digest else "; use force to move it")
                )
            conn.execute(
                "INSERT OR REPLACE INTO refs VALUES (?, ?, ?, ?, ?)",
                (*key, str(image_id), time.time()),
            )
        return True

    def get(self, name: str, *, tag: str | None = None, digest: Digest | None = None) -> Ref | None:
        """The reference ``name:tag`` or ``name@digest``, or None."""
        rows = self.db.query(
            "SELECT name, tag, digest, image_id FROM refs"
            " WHERE name = ? AND tag = ? AND digest = ?",
            (name, tag or "", str(digest) if digest else ""),
        )
        return _ref(tuple(rows[0])) if rows else None

    def remove(self, ref: Ref) -> bool:
        """Delete one reference; True when it existed. The image stays (see ``rmi``)."""
        with self.db.tx() as conn:
            cur = conn.execute(
                "DELETE FROM refs WHERE name = ? AND tag = ? AND digest = ?",
                (ref.name, ref.tag or "", str(ref.digest) if ref.digest else ""),
            )
            return cur.rowcount > 0

    def for_image(self, image_id: Digest) -> list[Ref]:
        """Every reference to ``image_id``, sorted."""
        rows = self.db.query(
            "SELECT name, tag, digest, image_id FROM refs WHERE image_id = ?", (str(image_id),)
        )
        return sorted((_ref(tuple(r)) for r in rows), key=str)

    def all(self) -> list[Ref]:
        """Every reference, sorted."""
        rows = self.db.query("SELECT name, tag, digest, image_id FROM refs")
        return sorted((_ref(tuple(r)) for r in rows), key=str)
