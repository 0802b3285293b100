"""The layer store: which layers exist, stacked how, and who still needs them.

A layer row joins a DiffID (computed by the store from the blob's bytes, never taken from a
caller or a config) to the compressed blob it came from and to its parent, under its ChainID.
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
from lorry.errors import InvalidInputError, NotFoundError
from lorry.store.content import LocalContentStore
from lorry.store.db import Database

__all__ = ["MAX_DEPTH", "Layer", "LayerStore", "next_chain_id"]

#: The deepest layer stack the store accepts (as Docker does).
MAX_DEPTH = 125

_COLUMNS = "chain_id, diff_id, blob_digest, media_type, parent, size, blob_size, refcount"


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


def next_chain_id(parent: ChainID | None, diff_id: DiffID) -> ChainID:
    """The ChainID of ``diff_id`` stacked on ``parent`` (None: the bottom layer)."""
    if parent is None:
        return ChainID(diff_id)
    return ChainID(Digest.of(f"{parent} {diff_id}".encode()))


def _layer(row: sqlite3.Row | tuple[object, ...]) -> Layer:
    cid, diff, blob, mt, parent, size, bsize, refs = tuple(row)
    return Layer(
        ChainID(Digest.parse(str(cid))),
        DiffID(Digest.parse(str(diff))),
        Digest.parse(str(blob)),
        str(mt),
        ChainID(Digest.parse(str(parent))) if parent else None,
        int(str(size)),
        int(str(bsize)),
        int(str(refs)),
    )


class LayerStore:
    """Registered layers in the store database; safe to use from many threads at once."""

    def __init__(self, db: Database, content: LocalContentStore) -> None:
        self.db = db
        self.content = content

    def register(self, blob: Digest, parent: ChainID | None, *, media_type: str) -> Layer:
        """Record the committed layer blob ``blob`` on top of ``parent``; idempotent.

        The DiffID is the one the store computed while ingesting the blob (or computes now).
        If the ChainID is already registered, the existing layer is returned unchanged.
        Raises NotFoundError when the blob or the parent layer is missing, InvalidInputError
        beyond :data:`MAX_DEPTH`.
        """
        info = self.content.layer_info(blob, media_type)
        assert info.diff_id is not None and info.uncompressed_size is not None
        chain = next_chain_id(parent, info.diff_id)
        with self.db.tx() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM layers WHERE chain_id = ?", (str(chain),))
            found = row.fetchone()
            if found is not None:
                return _layer(found)
            if parent is not None:
                depth = self._depth(conn, parent)
                if depth >= MAX_DEPTH:
                    raise InvalidInputError(f"layer {chain}: more than {MAX_DEPTH} layers deep")
                conn.execute(
                    "UPDATE layers SET refcount = refcount + 1 WHERE chain_id = ?", (str(parent),)
                )
            conn.execute(
                f"INSERT INTO layers ({_COLUMNS}, created) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    str(chain),
                    str(info.diff_id),
                    str(blob),
                    media_type,
                    str(parent) if parent else None,
                    info.uncompressed_size,
                    info.size,
                    time.time(),
                ),
            )
        return Layer(
            chain, info.diff_id, blob, media_type, parent, info.uncompressed_size, info.size, 0
        )

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

    def chain(self, top: Digest) -> list[Layer]:
        """The stack ending at ``top``, bottom layer first; NotFoundError when missing."""
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
