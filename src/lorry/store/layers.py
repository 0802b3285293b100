"""The layer store: which layers exist, stacked how, and who still needs them.

A layer row joins a DiffID to the compressed blob it came from and to its parent, under its
ChainID. The DiffID is either computed by the store from the blob's bytes (``verified``) or,
when a pull did not inflate the layer (issue 11), the image config's claim, checked where the
layer is inflated anyway (:meth:`LayerStore.verify`: ``lorry verify``, ``fsck --deep``, unpack).
A claim found false marks the layer bad (``bad_diff_id``): nothing builds on it again.
``refcount`` counts the layer's persistent users: child layers whose parent it is, and images
whose top layer it is. It is kept in the same transaction as the change that adds or removes a
user, so it is always exact, even after a crash. A layer with refcount 0 is garbage for
``prune``; a process that registers layers before creating the image that will use them holds
:meth:`lorry.store.Store.hold` so that a concurrent prune waits for it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from lorry.digest import ChainID, DiffID, Digest
from lorry.errors import IntegrityError, InvalidInputError, NotFoundError
from lorry.store.content import LocalContentStore
from lorry.store.db import Database

__all__ = ["MAX_DEPTH", "Layer", "LayerStore", "bad_layer_error", "next_chain_id"]

#: The deepest layer stack the store accepts (as Docker does).
MAX_DEPTH = 125

_COLUMNS = (
    "chain_id, diff_id, blob_digest, media_type, parent, size, blob_size, refcount, verified, "
    "bad_diff_id"
)


@dataclass(frozen=True, slots=True)
class Layer:
    """One registered layer; ``size`` is the uncompressed tar size, ``blob_size`` compressed."""

    chain_id: ChainID
    diff_id: DiffID
    blob_digest: Digest
    media_type: str
    parent: ChainID | None
    size: int
    blob_size: int
    refcount: int
    #: True when the store inflated the blob and found ``diff_id`` (else it is a claim).
    verified: bool = True
    #: What the content hashed to when the claim was found false: the layer is bad.
    bad_diff_id: DiffID | None = None


def bad_layer_error(layer: Layer) -> IntegrityError:
    """The one error for a layer whose content is not what its image config claims."""
    return IntegrityError(
        f"layer blob {layer.blob_digest}: its content has DiffID {layer.bad_diff_id}, not the "
        f"{layer.diff_id} its image configuration claims (the layer is marked bad)"
    )


def next_chain_id(parent: ChainID | None, diff_id: DiffID) -> ChainID:
    """The ChainID of ``diff_id`` stacked on ``parent`` (None: the bottom layer)."""
    if parent is None:
        return ChainID(diff_id)
    return ChainID(Digest.of(f"{parent} {diff_id}".encode()))


def _layer(row: sqlite3.Row | tuple[object, ...]) -> Layer:
    cid, diff, blob, mt, parent, size, bsize, refs, verified, bad = tuple(row)
    return Layer(
        ChainID(Digest.parse(str(cid))),
        DiffID(Digest.parse(str(diff))),
        Digest.parse(str(blob)),
        str(mt),
        ChainID(Digest.parse(str(parent))) if parent else None,
        int(str(size)),
        int(str(bsize)),
        int(str(refs)),
        verified is not None,
        DiffID(Digest.parse(str(bad))) if bad else None,
    )


class LayerStore:
    """Registered layers in the store database; safe to use from many threads at once."""

    def __init__(self, db: Database, content: LocalContentStore) -> None:
        self.db = db
        self.content = content

    def register(
        self,
        blob: Digest,
        parent: ChainID | None,
        *,
        media_type: str,
        claimed: DiffID | None = None,
    ) -> Layer:
        """Record the committed layer blob ``blob`` on top of ``parent``; idempotent.

        Without ``claimed`` the DiffID is the one the store computed (while ingesting, or now by
        inflating the blob): the layer is verified. With it, a DiffID the store already computed
        for the blob must equal the claim (else IntegrityError); one it has not computed is
        taken as a claim, unverified, with the size the stream declares. A ChainID registered
        already is returned when it has the same blob; when it has another blob (two blobs
        claim one content: another compression, or a lie) both are inflated and the one whose
        content matches keeps the ChainID; a claim found false is an IntegrityError, the layer
        bad. Raises NotFoundError when the blob or the parent is missing, InvalidInputError
        beyond :data:`MAX_DEPTH`, IntegrityError on a bad parent.
        """
        known = self.content.info(blob).diff_id
        if claimed is None or known is not None:
            info = self.content.layer_info(blob, media_type)
            assert info.diff_id is not None and info.uncompressed_size is not None
            if claimed is not None and info.diff_id != claimed:
                raise IntegrityError(
                    f"layer blob {blob}: its content has DiffID {info.diff_id}, not the "
                    f"{claimed} its image configuration claims"
                )
            diff, size, verified = DiffID(info.diff_id), info.uncompressed_size, True
        else:
            diff, size, verified = claimed, self.content.estimated_size(blob, media_type), False
        chain = next_chain_id(parent, diff)
        existing = self.find(chain)
        if existing is not None and existing.blob_digest != blob:
            return self._settle(existing, blob, media_type)
        if existing is not None:
            if existing.bad_diff_id is not None:
                raise bad_layer_error(existing)
            return existing
        blob_size = self.content.info(blob).size
        with self.db.tx() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM layers WHERE chain_id = ?", (str(chain),))
            found = row.fetchone()
            if found is not None:  # registered meanwhile by another process
                return _layer(found)
            if parent is not None:
                self._check_parent(conn, parent)
                depth = self._depth(conn, parent)
                if depth >= MAX_DEPTH:
                    raise InvalidInputError(f"layer {chain}: more than {MAX_DEPTH} layers deep")
                conn.execute(
                    "UPDATE layers SET refcount = refcount + 1 WHERE chain_id = ?", (str(parent),)
                )
            now = time.time()
            conn.execute(
                f"INSERT INTO layers ({_COLUMNS}, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, NULL, ?)",
                (
                    str(chain),
                    str(diff),
                    str(blob),
                    media_type,
                    str(parent) if parent else None,
                    size,
                    blob_size,
                    now if verified else None,
                    now,
                ),
            )
        return Layer(chain, diff, blob, media_type, parent, size, blob_size, 0, verified)

    def verify(self, chain_id: Digest) -> Layer:
        """Inflate the layer's blob and check its DiffID; record the answer.

        A match marks the layer verified (with its exact size); a mismatch marks it bad and
        raises the IntegrityError naming the layer and both DiffIDs.
        """
        layer = self.get(chain_id)
        info = self.content.layer_info(layer.blob_digest, layer.media_type)
        assert info.diff_id is not None and info.uncompressed_size is not None
        return self.record_check(chain_id, info.diff_id, info.uncompressed_size)

    def record_check(self, chain_id: Digest, found: DiffID, size: int) -> Layer:
        """Record what the layer's inflated content hashed to (``found``, ``size`` bytes).

        For callers that inflate the blob anyway (unpack, writers of uncompressed tars): a
        match marks the layer verified, a mismatch marks it bad and raises the IntegrityError.
        """
        claimed = self.get(chain_id).diff_id
        with self.db.tx() as conn:
            if found == claimed:
                conn.execute(
                    "UPDATE layers SET verified = coalesce(verified, ?), size = ?, "
                    "bad_diff_id = NULL WHERE chain_id = ?",
                    (time.time(), size, str(chain_id)),
                )
            else:
                conn.execute(
                    "UPDATE layers SET verified = NULL, bad_diff_id = ? WHERE chain_id = ?",
                    (str(found), str(chain_id)),
                )
        checked = self.get(chain_id)
        if checked.bad_diff_id is not None:
            raise bad_layer_error(checked)
        return checked

    def _settle(self, existing: Layer, blob: Digest, media_type: str) -> Layer:
        """Two blobs claim one ChainID: the one whose content has that DiffID keeps it."""
        if not existing.verified:
            try:
                existing = self.verify(existing.chain_id)
            except IntegrityError:
                existing = self.get(existing.chain_id)
        info = self.content.layer_info(blob, media_type)
        assert info.diff_id is not None and info.uncompressed_size is not None
        if info.diff_id != existing.diff_id:
            raise IntegrityError(
                f"layer blob {blob}: its content has DiffID {info.diff_id}, not the "
                f"{existing.diff_id} its image configuration claims"
            )
        if existing.bad_diff_id is None:
            return existing  # the same content in another blob (another compression)
        with self.db.tx() as conn:  # the newcomer is right where the first claim lied
            conn.execute(
                "UPDATE layers SET blob_digest = ?, media_type = ?, size = ?, blob_size = ?, "
                "verified = ?, bad_diff_id = NULL WHERE chain_id = ?",
                (
                    str(blob),
                    media_type,
                    info.uncompressed_size,
                    info.size,
                    time.time(),
                    str(existing.chain_id),
                ),
            )
        return self.get(existing.chain_id)

    @staticmethod
    def _check_parent(conn: sqlite3.Connection, parent: ChainID) -> None:
        """Nothing builds on a bad layer."""
        row = conn.execute(f"SELECT {_COLUMNS} FROM layers WHERE chain_id = ?", (str(parent),))
        found = row.fetchone()
        if found is not None and (layer := _layer(found)).bad_diff_id is not None:
            raise bad_layer_error(layer)

    def find(self, chain_id: Digest) -> Layer | None:
        """The layer with ``chain_id``, or None."""
        rows = self.db.query(f"SELECT {_COLUMNS} FROM layers WHERE chain_id = ?", (str(chain_id),))
        return _layer(rows[0]) if rows else None

    def get(self, chain_id: Digest) -> Layer:
        """The layer with ``chain_id``; NotFoundError when it is not registered."""
        layer = self.find(chain_id)
        if layer is None:
            raise NotFoundError(f"layer {chain_id} does not exist in the store")
        return layer

    def chain(self, top: Digest | None) -> list[Layer]:
        """The stack ending at ``top``, bottom layer first (empty for None: an image without
        layers); NotFoundError when missing."""
        out: list[Layer] = []
        cur: Digest | None = top
        while cur is not None:
            layer = self.get(cur)
            out.append(layer)
            cur = layer.parent
        out.reverse()
        return out

    def all(self) -> list[Layer]:
        """Every registered layer."""
        return [_layer(r) for r in self.db.query(f"SELECT {_COLUMNS} FROM layers")]

    def by_blob(self, blob: Digest) -> list[Layer]:
        """The layers made from the blob ``blob`` (one per parent chain)."""
        rows = self.db.query(f"SELECT {_COLUMNS} FROM layers WHERE blob_digest = ?", (str(blob),))
        return [_layer(r) for r in rows]

    def delete_unreferenced(self) -> list[Layer]:
        """Delete every layer nobody uses, cascading down the chains; return what went."""
        gone: list[Layer] = []
        with self.db.tx() as conn:
            while True:
                rows = conn.execute(f"SELECT {_COLUMNS} FROM layers WHERE refcount <= 0").fetchall()
                if not rows:
                    return gone
                for layer in map(_layer, rows):
                    conn.execute("DELETE FROM layers WHERE chain_id = ?", (str(layer.chain_id),))
                    if layer.parent is not None:
                        conn.execute(
                            "UPDATE layers SET refcount = refcount - 1 WHERE chain_id = ?",
                            (str(layer.parent),),
                        )
                    gone.append(layer)

    @staticmethod
    def _depth(conn: sqlite3.Connection, chain: ChainID) -> int:
        row = conn.execute(
            "WITH RECURSIVE up(id, n) AS (SELECT chain_id, 1 FROM layers WHERE chain_id = ? "
            "UNION ALL SELECT l.parent, up.n + 1 FROM layers l JOIN up ON l.chain_id = up.id "
            "WHERE l.parent IS NOT NULL) SELECT max(n) FROM up",
            (str(chain),),
        ).fetchone()
        if row is None or row[0] is None:
            raise NotFoundError(f"layer {chain} does not exist in the store (parent of a new one)")
        return int(row[0])
