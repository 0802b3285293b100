"""Pushing one blob to one repository: skip it, mount it, or upload its original bytes.

Per layer, cheapest first (xfer-spec §4.7): a HEAD in the target repository (``Layer already
exists``; a distribution-metadata record of the target that the HEAD contradicts is forgotten),
then cross-repository mounts from other repositories of the same registry that distribution
metadata names for this very blob (``Mounted from <repo>``; the registry client asks the token
service for the extra pull scope and hands back an upload session when a mount is refused),
then an upload of the **original compressed blob** from the store, so its digest never
changes. The upload is one streaming PUT unless chunked uploads are asked for, or the registry
refuses the monolithic form, in which case it is sent again as PATCH chunks (the registry client
resumes a chunked upload from the registry's offset after a dropped connection).

Everything here blocks; the push runs it in worker threads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

from lorry.digest import Digest
from lorry.errors import CancelledError
from lorry.oci import Descriptor
from lorry.progress import ByteThrottle
from lorry.registry.client import RegistryClient
from lorry.registry.uploads import DEFAULT_CHUNK_SIZE, UploadSession
from lorry.store import Store
from lorry.store.distmeta import RemoteBlob
from lorry.transports.registry import send_blob

__all__ = [
    "BlobTarget",
    "ProgressReader",
    "Reuse",
    "mount_candidates",
    "push_small_blob",
    "reuse_blob",
    "upload_blob",
]


@dataclass(frozen=True)
class BlobTarget:
    """Where a push's blobs go and how they are sent."""

    store: Store
    client: RegistryClient
    #: ``None``: monolithic, chunked when the registry refuses; True/False: always that form.
    chunked: bool | None = None
    chunk_size: int = DEFAULT_CHUNK_SIZE

    @property
    def registry(self) -> str:
        """The registry host the push goes to."""
        return self.client.registry

    @property
    def repository(self) -> str:
        """The repository path the push goes to."""
        return self.client.repository


#: What :func:`reuse_blob` found: the blob exists, was mounted from a repository, or not.
Reuse = (
    tuple[Literal["exists"], None]
    | tuple[Literal["mounted"], str]
    | tuple[Literal["upload"], UploadSession | None]
)


def _common_prefix(a: str, b: str) -> int:
    """How many leading path components two repository names share."""
    n = 0
    for x, y in zip(a.split("/"), b.split("/"), strict=False):
        if x != y:
            break
        n += 1
    return n


def _mount_budget(size: int) -> int:
    """How many mount candidates a blob of ``size`` bytes is worth (Docker's thresholds)."""
    if size > 10 * 1000 * 1000:
        return 4
    if size > 100 * 1000:
        return 3
    return 1


def mount_candidates(
    records: list[RemoteBlob], digest: Digest, repository: str, size: int
) -> list[str]:
    """Other repositories known to hold exactly ``digest``, best first, within the budget.

    Best = most leading path components shared with the target, then most recently seen
    (``records`` come newest first and the sort is stable).
    """
    repos: list[str] = []
    for rec in records:
        same = rec.blob_digest == digest and rec.repository != repository
        if same and rec.repository not in repos:
            repos.append(rec.repository)
    repos.sort(key=lambda r: -_common_prefix(r, repository))
    return repos[: _mount_budget(size)]


def reuse_blob(target: BlobTarget, desc: Descriptor, diff_id: Digest | None) -> Reuse:
    """HEAD the target, then try mounts; the session a refused mount opened comes back."""
    client, store = target.client, target.store
    records = store.distmeta.for_diff_id(diff_id, target.registry) if diff_id else []
    if client.stat_blob(desc.digest) is not None:
        return ("exists", None)
    if any(r.repository == target.repository and r.blob_digest == desc.digest for r in records):
        store.distmeta.forget(desc.digest, target.registry, target.repository)
    session: UploadSession | None = None
    for repo in mount_candidates(records, desc.digest, target.repository, desc.size):
        if session is not None:
            client.abort_upload(session)
        got = client.mount_blob(desc.digest, repo)
        if got is True:
            return ("mounted", repo)
        session = got
    return ("upload", session)


class ProgressReader:
    """A store blob file that reports how far it has been read (``Pushing`` progress).

    ``report`` is called with the bytes read so far when :class:`~lorry.progress.ByteThrottle`
    says so (the rule pull's downloads use) and at the end;
    ``on_end`` once the last byte was read (the registry then commits: no bytes move). Reads
    fail with CancelledError once ``cancelled`` is set, so an abandoned worker thread stops.
    Seeking (a replayed monolithic body) moves the reported position back.
    """

    def __init__(
        self,
        f: BinaryIO,
        total: int,
        *,
        report: Callable[[int], None] | None = None,
        on_end: Callable[[], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> None:
        self._f = f
        self.total = total
        self.position = 0
        self._throttle = ByteThrottle(total)
        self._report = report
        self._on_end = on_end
        self._cancelled = cancelled or threading.Event()

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes of the blob; b"" at the end."""
        if self._cancelled.is_set():
            raise CancelledError("upload cancelled")
        data = self._f.read(n)
        self.position += len(data)
        if self._report and self._throttle.due(self.position):
            self._report(self.position)
        if self.position >= self.total and data and self._on_end:
            self._on_end()
        return data

    def seekable(self) -> bool:
        """Always True: a store blob is a regular file."""
        return True

    def tell(self) -> int:
        """The file position."""
        return self._f.tell()

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move in the file; the progress position follows."""
        pos = self._f.seek(offset, whence)
        self.position = pos
        self._throttle.reset(pos)
        return pos


def upload_blob(
    target: BlobTarget,
    desc: Descriptor,
    session: UploadSession | None,
    reader: ProgressReader,
) -> None:
    """Send the blob's bytes from ``reader`` into ``session`` (or a new one) and commit it."""
    send_blob(
        target.client,
        desc,
        reader,
        session,
        chunked=target.chunked,
        chunk_size=target.chunk_size,
    )


def push_small_blob(target: BlobTarget, desc: Descriptor, mount_from: Sequence[str] = ()) -> str:
    """Make a small blob (a config) exist in the target: ``exists``, ``mounted`` or ``pushed``.

    ``mount_from`` names repositories that the image's layers were just mounted from; the
    config most likely lives there too, so one mount is tried before uploading.
    """
    client = target.client
    if client.stat_blob(desc.digest) is not None:
        return "exists"
    session: UploadSession | None = None
    if mount_from:
        got = client.mount_blob(desc.digest, mount_from[0])
        if got is True:
            return "mounted"
        session = got
    with target.store.content.open_blob(desc.digest) as f:
        upload_blob(target, desc, session, ProgressReader(f, desc.size))
    return "pushed"
