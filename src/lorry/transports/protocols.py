"""The seam every image move goes through: :class:`ImageSource` and :class:`ImageDestination`.

A copy (DESIGN.md §3) reads documents and blobs from one source and writes them to one
destination. Both sides are synchronous and blocking: the copy engine in ``lorry.ops`` calls
them from worker threads (DESIGN.md §9 measured this fastest) and keeps the orchestration —
scheduling, retries, progress, cancellation — on anyio. Transports know nothing of that.

Order of calls on a destination, for one copy::

    for each blob (layers, then configs):   reuse_blob(desc) -> truthy: skip it
                                            else put_blob(desc, open_at, on_wait)
    for each manifest, children first:      put_manifest(raw, media_type, digest)
    then the top document:                  put_manifest(raw, media_type, digest, top=True)
    finally:                                commit()   (or abort() on any failure)

Who verifies: a source hands out **unverified** bytes (``open_blob``) and documents
(``get_manifest``). A destination writes every blob through a verifying writer (size and digest
checked as bytes stream; :class:`~lorry.digest.Verifier`) and never exposes a blob before it is
complete and verified; the engine checks every document's digest against the descriptor that
named it before it reaches ``put_manifest``. What is retried: ``open_at`` and ``put_blob`` may be
called again by the engine after a retryable error (:class:`~lorry.errors.UnavailableError`); a
destination that can resume (a local directory keeps its partial blob) reads from its offset,
others from zero. What a failed or cancelled copy leaves: complete, verified blobs (so the next
run does not fetch them again) and partial data the destination can resume; never a document
(``index.json``, an archive, a tag) that names content that is not there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from lorry.digest import Digest
from lorry.oci import Descriptor

__all__ = [
    "BlobMemory",
    "BlobOpener",
    "BlobStream",
    "DestinationProperties",
    "ImageDestination",
    "ImageSource",
    "Mounted",
    "Reuse",
    "Skipped",
    "WaitHook",
]


class BlobStream(Protocol):
    """The bytes of one blob from some offset: iterate for chunks; ``abort`` from any thread."""

    def __iter__(self) -> Iterator[bytes]:
        """The chunks, in order; raises UnavailableError when the stream is cut."""

    def close(self) -> None:
        """Release the stream (file, connection). Idempotent."""

    def abort(self) -> None:
        """Cut the stream from another thread so a blocked read ends promptly."""


#: ``open_at(offset)`` opens the source blob from ``offset`` (what ``put_blob`` is handed).
BlobOpener = Callable[[int], Iterator[bytes]]

#: Called now and then while ``put_blob`` waits for another writer of the same blob (a lock);
#: it may raise to stop the wait (a cancelled copy).
WaitHook = Callable[[], None]


@dataclass(frozen=True)
class Mounted:
    """``reuse_blob``'s answer when the blob was mounted from another repository."""

    repository: str


@dataclass(frozen=True)
class Skipped:
    """``reuse_blob``'s answer for a blob the destination does not take (a foreign layer)."""

    reason: str


#: What ``reuse_blob`` says: False (send it), True (it is there), or how else it was settled.
Reuse = bool | Mounted | Skipped


class BlobMemory(Protocol):
    """What a registry destination may know from elsewhere about where blobs already are.

    The store's distribution metadata is one (push): it names other repositories of the
    destination's registry that hold a blob (mount candidates) and learns what was sent.
    """

    def mount_sources(self, desc: Descriptor) -> Sequence[str]:
        """Repositories of the destination registry known to hold the blob, best first."""

    def forget(self, desc: Descriptor) -> None:
        """The destination repository does not have the blob, whatever was recorded."""

    def remember(self, desc: Descriptor) -> None:
        """The destination repository has the blob now."""


class ImageSource(Protocol):
    """Where a copy reads from: documents by reference or digest, blobs by descriptor."""

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it (for messages)."""

    def get_manifest(self, ref: str | Digest | None = None) -> tuple[bytes, str, Digest]:
        """A document's bytes, media type and digest (computed from the bytes, unverified).

        ``ref`` None means the document the transport reference names (its tag, its only
        image); a :class:`Digest` a document the source holds by digest. NotFoundError when
        there is none; InvalidInputError when the reference matches several.
        """

    def open_blob(self, desc: Descriptor, offset: int = 0) -> BlobStream:
        """The blob's bytes from ``offset``, unverified. NotFoundError when it is not there."""

    def close(self) -> None:
        """Release files and sessions. Idempotent."""


@dataclass(frozen=True)
class DestinationProperties:
    """What a destination accepts and can do, so the engine can plan before it writes."""

    #: Manifest and index media types it stores unchanged (others must be converted).
    manifest_types: frozenset[str]
    #: False: it holds one image manifest per image (no index), e.g. a docker-archive.
    accepts_index: bool = True
    #: How it can reuse a blob without bytes moving: "present" (local), "head", "mount".
    reuse: frozenset[str] = field(default_factory=frozenset)
    #: True when it needs each layer's DiffID (it registers layers, e.g. the store).
    needs_diff_ids: bool = False


class ImageDestination(Protocol):
    """Where a copy writes to (see the module docstring for the order of calls)."""

    @property
    def name(self) -> str:
        """The transport reference as the user wrote it (for messages)."""

    @property
    def properties(self) -> DestinationProperties:
        """What this destination accepts (see :class:`DestinationProperties`)."""

    def reuse_blob(self, desc: Descriptor) -> Reuse:
        """Truthy when nothing needs sending: True (it is there), Mounted, or Skipped."""

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        """Write the blob, reading it with ``open_at(offset)``; verified before it is visible.

        The destination picks the offset (where its partial data ends, else 0) and may call
        ``open_at`` again from 0 (e.g. to resend in another form). ``on_wait`` is called while
        it waits for another writer of the same blob (which may finish it meanwhile).
        """

    def put_manifest(
        self, raw: bytes, media_type: str, digest: Digest, *, top: bool = False
    ) -> None:
        """Store a verified document; ``top`` for the one the reference names (last call)."""

    def commit(self) -> None:
        """Make the copy visible (index.json, archive, tag) atomically."""

    def abort(self) -> None:
        """Forget an unfinished copy: nothing new becomes visible. Idempotent."""
