"""The :class:`Store` facade: one local store root, opened once, shared by threads.

::

    with Store.open(root) as store:          # root None: LORRY_ROOT or the user data dir
        with store.hold():                    # keep new, not-yet-referenced content from prune
            with store.content.writer(blob, size, media_type=mt) as w:
                if not w.exists:
                    for chunk in fetch(offset=w.offset): w.write(chunk)
                    w.commit()
            layer = store.layers.register(blob, parent, media_type=mt)
            image = store.images.create(config_digest)
            store.refs.add_tag("docker.io/library/alpine", "latest", image.id)

All methods are synchronous and thread-safe (async callers run them in worker threads). Two
processes may open the same root at once: SQLite serialises their writes; flock locks
serialise ingests of one blob; :meth:`Store.hold` (shared) and :meth:`Store.exclusive` (prune)
keep garbage collection from deleting what a running pull or push has not yet linked.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lorry.store.content import LocalContentStore
from lorry.store.db import Database
from lorry.store.distmeta import DistributionMetadata
from lorry.store.images import ImageStore
from lorry.store.layers import LayerStore
from lorry.store.locks import FileLock, WaitHook
from lorry.store.references import ReferenceStore
from lorry.store.root import StoreLayout, resolve_root

__all__ = ["Store"]


class Store:
    """An open local store: content, layers, images, references and distribution metadata."""

    def __init__(self, layout: StoreLayout) -> None:
        layout.create()
        self.layout = layout
        self.db = Database(layout.database, has_content=layout.has_blobs)
        self.content = LocalContentStore(layout, self.db)
        self.layers = LayerStore(self.db, self.content)
        self.images = ImageStore(self.db, self.content, self.layers)
        self.refs = ReferenceStore(self.db)
        self.distmeta = DistributionMetadata(self.db)
        self._hold_lock = FileLock(layout.store_lock)
        self._holders = 0
        self._guard = threading.Lock()

    @classmethod
    def open(cls, root: Path | str | None = None) -> Store:
        """Open (creating if needed) the store at ``root``; see :func:`resolve_root`.

        A damaged database is a :class:`~lorry.errors.StoreError` naming it (never re-created
        over existing blobs); ``lorry fsck --repair`` (:mod:`lorry.store.repair`) rebuilds it.
        """
        return cls(StoreLayout(resolve_root(root)))

    @property
    def root(self) -> Path:
        """The store's root directory."""
        return self.layout.root

    def close(self) -> None:
        """Close the database connections of every thread."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make the database changes inside one transaction: one commit (an fsync) instead of
        one each, all or nothing. Only database changes belong inside: a blob write waits for
        file locks, which must never be waited for while holding the database's write lock."""
        with self.db.tx():
            yield

    @contextmanager
    def hold(self, on_wait: WaitHook | None = None) -> Iterator[None]:
        """Keep a concurrent prune out while content is written but not yet referenced.

        Re-entrant and shared by all threads of this Store; waits while a prune runs.
        """
        with self._guard:
            if self._holders == 0:
                self._hold_lock.acquire(shared=True, on_wait=on_wait)
            self._holders += 1
        try:
            yield
        finally:
            with self._guard:
                self._holders -= 1
                if self._holders == 0:
                    self._hold_lock.release()

    @contextmanager
    def exclusive(self, on_wait: WaitHook | None = None) -> Iterator[None]:
        """Own the store alone (for prune): waits until no process holds it. Not re-entrant."""
        lock = FileLock(self.layout.store_lock)
        lock.acquire(on_wait=on_wait)
        try:
            yield
        finally:
            lock.release()
