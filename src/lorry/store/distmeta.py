"""Distribution metadata: which blob digest carries which DiffID, per registry and repository.

Pull records ``(DiffID, blob digest, registry, repository)`` after it has verified the blob and
computed its DiffID locally; push asks which blobs are known for a DiffID to skip uploads (HEAD)
or mount them from another repository on the same registry. A pair is accepted only when the
store itself computed it (``blob_info`` or a registered layer), never from a caller's claim.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from lorry.digest import Digest
from lorry.errors import IntegrityError
from lorry.store.db import Database

__all__ = ["DistributionMetadata", "RemoteBlob"]

#: How many remote locations are kept per DiffID (the oldest are forgotten), as Docker does.
MAX_PER_DIFF_ID = 50


@dataclass(frozen=True, slots=True)
class RemoteBlob:
    """A blob known to exist at ``registry/repository``, with the DiffID it decompresses to."""

    diff_id: Digest
    blob_digest: Digest
    registry: str
    repository: str
    hmac: str
    updated: float


class DistributionMetadata:
    """DiffID ↔ blob digest records in the store database; thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        diff_id: Digest,
        blob: Digest,
        registry: str,
        repository: str,
        *,
        hmac: str = "",
        claimed: bool = False,
    ) -> None:
        """Remember that ``blob`` (with ``diff_id``) exists at ``registry/repository``.

        Raises IntegrityError unless the store computed this DiffID for this blob itself, or
        ``claimed`` says the DiffID is a config's claim: such a record serves to mount that
        exact blob (where it lives does not depend on what it holds), never to reuse a layer
        by DiffID (:meth:`diff_id_of` ignores it).
        """
        with self.db.tx() as conn:
            verified = (
                conn.execute(
                    "SELECT 1 FROM blob_info WHERE digest = ? AND diff_id = ? UNION ALL "
                    "SELECT 1 FROM layers WHERE blob_digest = ? AND diff_id = ? "
                    "AND verified IS NOT NULL AND bad_diff_id IS NULL LIMIT 1",
                    (str(blob), str(diff_id), str(blob), str(diff_id)),
                ).fetchone()
                is not None
            )
            if not verified and not claimed:
                raise IntegrityError(
                    f"blob {blob} is not verified locally as DiffID {diff_id}: not recorded"
                )
            conn.execute(
                "INSERT OR REPLACE INTO distmeta VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    str(diff_id),
                    str(blob),
                    registry,
                    repository,
                    hmac,
                    time.time(),
                    int(not verified),
                ),
            )
            conn.execute(
                "DELETE FROM distmeta WHERE diff_id = ? AND rowid NOT IN (SELECT rowid FROM "
                "distmeta WHERE diff_id = ? ORDER BY updated DESC LIMIT ?)",
                (str(diff_id), str(diff_id), MAX_PER_DIFF_ID),
            )

    def for_diff_id(self, diff_id: Digest, registry: str | None = None) -> list[RemoteBlob]:
        """Where blobs of ``diff_id`` are known to live (on ``registry`` if given), newest first."""
        sql = (
            "SELECT diff_id, blob_digest, registry, repository, hmac, updated FROM distmeta "
            "WHERE diff_id = ?"
        )
        args: tuple[str, ...] = (str(diff_id),)
        if registry is not None:
            sql, args = sql + " AND registry = ?", (*args, registry)
        rows = self.db.query(sql + " ORDER BY updated DESC", args)
        return [_remote(tuple(r)) for r in rows]

    def diff_id_of(self, blob: Digest) -> Digest | None:
        """The DiffID of ``blob`` if the store verified it (or recorded it at a push), else None.

        Never a config's unverified claim: "Already exists" by DiffID rests on this.
        """
        rows = self.db.query(
            "SELECT diff_id FROM blob_info WHERE digest = ? AND diff_id IS NOT NULL UNION ALL "
            "SELECT diff_id FROM layers WHERE blob_digest = ? AND verified IS NOT NULL "
            "AND bad_diff_id IS NULL UNION ALL "
            "SELECT diff_id FROM distmeta WHERE blob_digest = ? AND claimed = 0 LIMIT 1",
            (str(blob), str(blob), str(blob)),
        )
        return Digest.parse(rows[0][0]) if rows else None

    def forget(self, blob: Digest, registry: str, repository: str) -> int:
        """Drop the records of ``blob`` at ``registry/repository`` (it was not there)."""
        with self.db.tx() as conn:
            cur = conn.execute(
                "DELETE FROM distmeta WHERE blob_digest = ? AND registry = ? AND repository = ?",
                (str(blob), registry, repository),
            )
            return cur.rowcount


def _remote(row: tuple[object, ...]) -> RemoteBlob:
    diff, blob, registry, repo, hmac, updated = row
    return RemoteBlob(
        Digest.parse(str(diff)),
        Digest.parse(str(blob)),
        str(registry),
        str(repo),
        str(hmac),
        float(str(updated)),
    )
