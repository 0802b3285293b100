"""The seams between the transfer layer and the code that supplies the work (xfer-spec §2.1, §3.1).

Pull implements :class:`DownloadDescriptor` (one per layer) and adapts the local layer store to
:class:`LayerStoreLike`; push implements :class:`UploadDescriptor`. The managers never see a
registry, an HTTP session or a file path: a downloaded blob is an opaque *handle* that the
descriptor produced and the layer store consumes.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol, TypeVar

from lorry.digest import ChainID, DiffID, Digest
from lorry.progress import ProgressEvent

__all__ = [
    "DownloadDescriptor",
    "ExtractProgress",
    "LayerLike",
    "LayerStoreLike",
    "TransferProgress",
    "UploadDescriptor",
    "blob_key",
    "upload_key",
]

H_co = TypeVar("H_co", covariant=True)
H_contra = TypeVar("H_contra", contravariant=True)
R_co = TypeVar("R_co", covariant=True)
L = TypeVar("L", bound="LayerLike")

#: Called by :meth:`LayerStoreLike.register` with (bytes consumed, total or None).
ExtractProgress = Callable[[int, int | None], None]


def blob_key(digest: Digest) -> str:
    """The download key of a blob: its digest alone, so every pull shares one fetch of it."""
    return f"blob:{digest}"


def upload_key(registry: str, repository: str, digest: Digest) -> str:
    """The upload key: registry host + repository + digest (moby PR #23712, xfer-spec §7.12)."""
    return f"push:{registry}/{repository}@{digest}"


class TransferProgress(Protocol):
    """The sink a descriptor reports through; also feeds the stall watchdog."""

    def emit(self, event: ProgressEvent) -> None:
        """Report progress; callable from the event loop or an anyio worker thread."""

    def exempt(self) -> AbstractContextManager[None]:
        """A section where moving no bytes is expected (e.g. a registry committing an upload)."""


class DownloadDescriptor(Protocol[H_co]):
    """One layer of a pull, as the download manager needs it.

    Contract: the manager calls ``download`` at most once per attempt, only while the transfer
    holds a download slot, possibly several times (retries; a retry should resume what it
    can). The descriptor emits ``Downloading`` progress, ``Verifying Checksum`` and ``Download
    complete`` itself and **verifies** the blob's size and digest before returning; a
    mismatch is an :class:`~lorry.errors.IntegrityError` (not retried). Cancellation arrives
    as anyio cancellation; blocking reads in worker threads must be made to end promptly.
    A descriptor may be used by a transfer that another pull shares, so it (and the session
    behind it) must stay usable until ``close`` is called; the manager calls ``close`` exactly
    once, when no transfer needs it any more. The handle ``download`` returns must stay valid
    until then.
    """

    def key(self) -> str:
        """Dedup key of the blob, normally :func:`blob_key` of its digest."""

    def id(self) -> str:
        """Display id: the blob digest's 12 hex characters."""

    def diff_id(self) -> DiffID | None:
        """The layer's DiffID if already known (from earlier pulls), else None."""

    async def download(self, progress: TransferProgress) -> H_co:
        """Fetch and verify the blob; return a handle the layer store can register."""

    def registered(self, diff_id: DiffID) -> None:
        """Told the DiffID once the layer is in the store (also for ``Already exists``)."""

    def close(self) -> None:
        """Free what the descriptor holds (partial downloads, temp files); called once."""


class LayerLike(Protocol):
    """A layer reference handed out by the layer store."""

    @property
    def chain_id(self) -> ChainID:
        """The layer's ChainID."""

    @property
    def diff_id(self) -> DiffID:
        """The layer's DiffID (computed while registering, never trusted from outside)."""


class LayerStoreLike(Protocol[H_contra, L]):
    """What the download manager needs from the layer store (xfer-spec §2.6).

    Every ``get`` or ``register`` that returns a layer hands out one reference, which the
    manager gives back with exactly one ``release``. A layer keeps its parent alive: the store
    takes a reference on the parent when registering a child and drops it when the child goes.
    ``register`` computes the DiffID while applying the handle's bytes and, when the ChainID
    already exists, returns the existing layer with an extra reference. It is called strictly
    bottom→top (a layer only after its parent is registered), under the CPU limit. If it is
    cancelled it must not leave a reference behind (shield the commit, then return normally).
    """

    async def get(self, chain_id: ChainID, key: str) -> L | None:
        """Take a reference on the layer with this ChainID, or return None if it is absent.

        ``key`` is the wanting descriptor's :meth:`~DownloadDescriptor.key`: a store may refuse
        a layer made from other bytes than the ones that key names (lorry's store does when
        the layer's DiffID is only a claim).
        """

    async def register(
        self, handle: H_contra, parent: ChainID | None, progress: ExtractProgress
    ) -> L:
        """Decompress and apply the blob on top of ``parent``; return a referenced layer."""

    async def release(self, layer: L) -> None:
        """Drop one reference (cascading to parents when the count reaches zero)."""


class UploadDescriptor(Protocol[R_co]):
    """One layer of a push, as the upload manager needs it.

    ``upload`` runs only while the transfer holds an upload slot and may be retried. It emits
    ``Pushing`` progress and exactly one final status (``Pushed``, ``Layer already exists``,
    ``Mounted from <repo>`` or ``Skipped foreign layer``) and returns the remote descriptor.
    Waiting for the registry to commit a large blob belongs inside ``progress.exempt()`` so
    the stall watchdog does not fire. ``close`` is called once, when no transfer needs it.
    """

    def key(self) -> str:
        """Fully qualified dedup key, normally :func:`upload_key`."""

    def id(self) -> str:
        """Display id: 12 hex characters of the layer's DiffID."""

    def diff_id(self) -> DiffID:
        """The layer's DiffID."""

    async def upload(self, progress: TransferProgress) -> R_co:
        """Make the blob exist in the target repository; return its remote descriptor."""

    def close(self) -> None:
        """Free what the descriptor holds; called once."""
