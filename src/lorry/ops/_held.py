"""The store's shared hold (keeps ``prune`` out) as an async context for pull and push."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.from_thread
import anyio.to_thread

from lorry.store import Store

__all__ = ["held"]


@asynccontextmanager
async def held(store: Store) -> AsyncIterator[None]:
    """Hold ``store`` so a concurrent prune cannot delete blobs an operation reads or just wrote.

    The lock is taken and given back in worker threads (it may wait for a prune to finish, and
    that wait stays cancellable); giving it back is shielded so a cancelled operation still does.
    """
    hold = store.hold(on_wait=anyio.from_thread.check_cancelled)
    await anyio.to_thread.run_sync(hold.__enter__)
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(hold.__exit__, None, None, None)
