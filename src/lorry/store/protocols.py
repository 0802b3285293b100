"""The store's contracts: what a content store and its blob writers promise, and what an
ingest needs from the store it writes into.

Kept apart from the implementations so that :mod:`lorry.store.content` (which hands out
:class:`~lorry.store.ingest.IngestWriter`) and :mod:`lorry.store.ingest` (which writes into a
content store) depend on these protocols, not on each other. ``lorry.testing.store_conformance``
checks any :class:`ContentStore` against the contract.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from lorry.digest import DiffID, Digest
from lorry.store.locks import WaitHook
from lorry.store.root import StoreLayout

__all__ = ["BlobInfo", "BlobWriter", "ContentStore", "IngestTarget"]


@dataclass(frozen=True, slots=True)
class BlobInfo:
    """What the store knows about a committed blob; DiffID fields only for layers."""

    digest: Digest
    size: int
    media_type: str | None = None
    diff_id: DiffID | None = None
    uncompressed_size: int | None = None


class ContentStore(Protocol):
    """The contract of a content store (what the conformance suite checks)."""

    def exists(self, digest: Digest) -> bool:
        """True when the blob is committed."""

    def info(self, digest: Digest) -> BlobInfo:
        """The committed blob's info; NotFoundError when absent."""

    def open_blob(self, digest: Digest) -> BinaryIO:
        """A binary file open for reading the committed blob; NotFoundError when absent."""

    def read_bytes(self, digest: Digest) -> bytes:
        """The whole committed blob (for small blobs: configs, manifests)."""

    def writer(
        self,
        digest: Digest,
        size: int | None = None,
        *,
        media_type: str | None = None,
        on_wait: WaitHook | None = None,
        diff_ids: bool = True,
    ) -> BlobWriter:
        """Open (or wait for, or resume) the ingest of ``digest``.

        ``diff_ids`` False skips inflating a layer while it is written (no DiffID learnt).
        """

    def put_bytes(
        self, data: bytes, *, media_type: str | None = None, expected: Digest | None = None
    ) -> BlobInfo:
        """Store ``data`` in one go (checked against ``expected`` when given)."""

    def delete(self, digest: Digest) -> bool:
        """Remove a committed blob; False when it was not there."""

    def walk(self) -> Iterator[Digest]:
        """Every committed blob's digest."""


class BlobWriter(Protocol):
    """A locked, resumable, verifying write of one blob (see :class:`IngestWriter`).

    ``exists``: the blob was committed already, nothing to write. ``offset``: where the next
    ``write`` continues (earlier partial data re-verified). ``commit`` checks size and digest and
    only then makes the blob visible; ``abort`` drops the partial data; ``close`` keeps it.
    """

    exists: bool
    resumed: int

    @property
    def offset(self) -> int:
        """Bytes accepted so far."""

    @property
    def path(self) -> Path:
        """The partial data file (for messages)."""

    def write(self, chunk: bytes | bytearray | memoryview) -> None:
        """Append ``chunk`` (hashed as it goes)."""

    def restart(self) -> None:
        """Forget the partial data and start from offset 0."""

    def commit(self) -> BlobInfo:
        """Verify, then make the blob visible; an existing blob is success."""

    def abort(self) -> None:
        """Delete the partial data and release the lock."""

    def close(self) -> None:
        """Release the lock, keeping any partial data for a later resume."""

    def __enter__(self) -> BlobWriter:
        """The writer itself."""

    def __exit__(self, *exc: object) -> None:
        """:meth:`close`."""


class IngestTarget(Protocol):
    """What an ingest needs from the content store it commits into."""

    @property
    def layout(self) -> StoreLayout:
        """Where blobs and ingests live."""

    def exists(self, digest: Digest) -> bool:
        """True when the blob is committed."""

    def info(self, digest: Digest) -> BlobInfo:
        """The committed blob's info."""

    def record(
        self,
        digest: Digest,
        size: int,
        media_type: str | None,
        diff_id: Digest | None,
        uncompressed_size: int | None,
    ) -> BlobInfo:
        """Remember what the ingest learnt about the blob it committed."""
