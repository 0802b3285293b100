"""``docker://REF``: a registry repository as an image source and destination.

The source serves documents by tag or digest and blobs from any offset (the client resumes
with ``Range``). The destination reuses a blob the repository has (HEAD) or can mount from
another repository of the same registry, else uploads it: one streaming PUT, sent again as
PATCH chunks when the registry refuses the monolithic form. The bytes it sends are read
through :class:`OpenedReader`, which hashes what it hands over and fails before the last
chunk leaves when the digest is wrong, so a bad source never becomes a committed blob.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Protocol

from lorry import mediatypes as mt
from lorry.digest import Digest, Verifier
from lorry.errors import LorryError
from lorry.oci import Descriptor
from lorry.reference import Reference
from lorry.registry.blobs import BlobReader
from lorry.registry.client import RegistryClient
from lorry.registry.uploads import DEFAULT_CHUNK_SIZE, UploadSession
from lorry.transports.protocols import (
    BlobMemory,
    BlobOpener,
    DestinationProperties,
    Mounted,
    Reuse,
    Skipped,
    WaitHook,
)

__all__ = [
    "OpenedReader",
    "RegistryDestination",
    "RegistrySource",
    "SeekableBody",
    "refuses_monolithic",
    "send_blob",
]

log = logging.getLogger(__name__)

#: HTTP statuses with which a registry says "not like that" to a monolithic PUT.
_MONOLITHIC_REFUSED = frozenset({405, 411, 413, 415, 501})


class RegistrySource:
    """A repository as an :class:`~lorry.transports.ImageSource` (its ``ref`` names the top)."""

    def __init__(self, client: RegistryClient, ref: Reference) -> None:
        self.client = client
        self.ref = ref

    @property
    def name(self) -> str:
        """``docker://`` and the reference."""
        return f"docker://{self.ref}"

    def get_manifest(self, ref: str | Digest | None = None) -> tuple[bytes, str, Digest]:
        """The document by tag or digest (None: the reference's digest, else its tag)."""
        if ref is None:
            ref = Digest.parse(self.ref.digest) if self.ref.digest else (self.ref.tag or "latest")
        return self.client.get_manifest(ref)

    def open_blob(self, desc: Descriptor, offset: int = 0) -> BlobReader:
        """The blob from ``offset`` (foreign layers from their ``urls``), unverified."""
        return self.client.open_blob(desc.digest, offset, size=desc.size, urls=desc.urls)

    def close(self) -> None:
        """Nothing to release: the session belongs to the caller."""


def refuses_monolithic(exc: LorryError) -> bool:
    """True when a failed monolithic PUT says the registry wants another upload form."""
    return exc.status in _MONOLITHIC_REFUSED or "UNSUPPORTED" in exc.codes


class OpenedReader:
    """A file-like view of a source blob for an upload body: verified, and seekable by reopening.

    Reading from 0 hashes every byte; the read that would hand over the blob's last byte first
    checks size and digest (IntegrityError), so the registry never receives a complete bad
    body. ``seek`` reopens the source at the new offset (a replayed or resent body).
    """

    def __init__(self, desc: Descriptor, open_at: BlobOpener) -> None:
        self.desc = desc
        self._open_at = open_at
        self._position = 0
        self._chunks: Iterator[bytes] | None = None
        self._buffer = b""
        self._at = 0  # how much of ``_buffer`` was handed out
        self._verifier: Verifier | None = None

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes (all the rest with -1), at most one source chunk; b"" at the end.

        A whole source chunk is handed on as it is (no copy): an upload body reads 1 MiB at a
        time and the source yields 1 MiB chunks.
        """
        if self._chunks is None:
            self._reopen()
        assert self._chunks is not None
        if n < 0:
            out: bytes = self._buffer[self._at :] + b"".join(self._chunks)
            self._buffer, self._at = b"", 0
        else:
            if self._at >= len(self._buffer):
                self._buffer, self._at = next(self._chunks, b""), 0
            if self._at == 0 and len(self._buffer) <= n:
                out, self._buffer = self._buffer, b""
            else:
                out = bytes(memoryview(self._buffer)[self._at : self._at + n])
                self._at += len(out)
        self._position += len(out)
        if self._verifier is not None:
            self._verifier.update(out)
            if self._position >= self.desc.size:
                self._verifier.verify()
        return out

    def seekable(self) -> bool:
        """Always True: seeking reopens the source."""
        return True

    def tell(self) -> int:
        """Bytes handed out so far (from the start of the blob)."""
        return self._position

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Reopen the source at ``offset`` (only absolute seeks)."""
        if whence != 0:
            raise ValueError("OpenedReader seeks only to absolute offsets")
        self._position = offset
        self._reopen()
        return offset

    def close(self) -> None:
        """Close the open source stream."""
        close = getattr(self._chunks, "close", None)
        if callable(close):
            close()
        self._chunks = None

    def _reopen(self) -> None:
        self.close()
        self._buffer, self._at = b"", 0
        start = self._position
        self._verifier = (
            Verifier(self.desc.digest, self.desc.size, what=f"blob {self.desc.digest}")
            if start == 0
            else None  # a resent tail: the registry checks the digest of the whole
        )
        self._chunks = iter(self._open_at(start))


class SeekableBody(Protocol):
    """An upload body that can be sent again from the start (a file, an OpenedReader)."""

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes."""

    def seekable(self) -> bool:
        """True."""

    def tell(self) -> int:
        """The position."""

    def seek(self, offset: int, whence: int = 0, /) -> int:
        """Move to ``offset``."""


def send_blob(
    client: RegistryClient,
    desc: Descriptor,
    body: SeekableBody,
    session: UploadSession | None = None,
    *,
    chunked: bool | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Upload ``body`` into ``session`` (or a new one) and commit it as ``desc.digest``.

    ``chunked`` None: one streaming PUT, resent as PATCH chunks when the registry refuses
    that form; True/False: always that form.
    """
    if session is None:
        session = client.start_upload()
    try:
        client.upload_blob(
            session, body, desc.digest, desc.size, chunked=bool(chunked), chunk_size=chunk_size
        )
    except LorryError as exc:
        if chunked is not None or not refuses_monolithic(exc):
            raise
        log.debug("%s; sending %s in chunks instead", exc, desc.digest)
        body.seek(0)
        fresh = client.start_upload()
        client.upload_blob(fresh, body, desc.digest, desc.size, chunked=True, chunk_size=chunk_size)


class RegistryDestination:
    """A repository as an :class:`~lorry.transports.ImageDestination`.

    ``tag`` is where the top document goes (None: by digest only). Per blob, cheapest first
    (xfer-spec §4.7): a HEAD in the repository, then cross-repository mounts from other
    repositories of the same registry — those ``memory`` knows hold the blob (push: the
    store's distribution metadata), then ``mount_from`` (a registry → registry copy passes its
    source), and for a blob that is not a layer (a config) the repository a layer of this
    copy was just mounted from — and only then an upload. Non-distributable (foreign) layers
    are skipped unless ``allow_foreign``.
    """

    def __init__(
        self,
        client: RegistryClient,
        tag: str | None,
        *,
        mount_from: tuple[str, ...] = (),
        memory: BlobMemory | None = None,
        allow_foreign: bool = False,
        chunked: bool | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.client = client
        self.tag = tag
        self.mount_from = tuple(r for r in mount_from if r != client.repository)
        self.memory = memory
        self.allow_foreign = allow_foreign
        self.chunked = chunked
        self.chunk_size = chunk_size
        #: The digest the registry serves under ``tag`` after the top document went up.
        self.pushed: Digest | None = None
        #: Repositories blobs of this copy were mounted from, in order.
        self.mounted: list[str] = []
        self._sessions: dict[Digest, UploadSession] = {}
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """``docker://registry/repository[:tag]``."""
        where = f"{self.client.registry}/{self.client.repository}"
        return f"docker://{where}:{self.tag}" if self.tag else f"docker://{where}"

    @property
    def properties(self) -> DestinationProperties:
        """Every manifest and index type; reuse by HEAD and mount."""
        return DestinationProperties(
            manifest_types=frozenset(mt.MANIFEST_TYPES + mt.INDEX_TYPES),
            reuse=frozenset({"head", "mount"}),
        )

    def reuse_blob(self, desc: Descriptor) -> Reuse:
        """True when the repository has the blob; Mounted when a mount made it so."""
        if mt.is_foreign_layer(desc.media_type) and not self.allow_foreign:
            return Skipped("non-distributable layer")
        if self.client.stat_blob(desc.digest) is not None:
            self._remember(desc)
            return True
        if self.memory is not None:
            self.memory.forget(desc)
        session: UploadSession | None = None
        for repo in self._mount_candidates(desc):
            if session is not None:
                self.client.abort_upload(session)
            got = self.client.mount_blob(desc.digest, repo)
            if got is True:
                with self._lock:
                    self.mounted.append(repo)
                self._remember(desc)
                return Mounted(repo)
            session = got  # a refused mount hands back an upload session
        if session is not None:
            with self._lock:
                self._sessions[desc.digest] = session
        return False

    def _mount_candidates(self, desc: Descriptor) -> list[str]:
        repos = list(self.memory.mount_sources(desc)) if self.memory is not None else []
        repos += [r for r in self.mount_from if r not in repos]
        if not mt.is_layer(desc.media_type):
            with self._lock:
                recent = self.mounted[:1]
            repos += [r for r in recent if r not in repos]
        return repos

    def _remember(self, desc: Descriptor) -> None:
        if self.memory is not None:
            self.memory.remember(desc)

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        """Upload the blob from offset 0 (a registry cannot resume another client's upload)."""
        with self._lock:
            session = self._sessions.pop(desc.digest, None)
        body = OpenedReader(desc, open_at)
        try:
            send_blob(
                self.client, desc, body, session, chunked=self.chunked, chunk_size=self.chunk_size
            )
        finally:
            body.close()
        self._remember(desc)

    def put_manifest(
        self, raw: bytes, media_type: str, digest: Digest, *, top: bool = False
    ) -> None:
        """Children by digest; the top document by tag (by digest without one)."""
        where: str | Digest = self.tag if (top and self.tag) else digest
        got = self.client.put_manifest(where, raw, media_type)
        if top:
            self.pushed = got

    def commit(self) -> None:
        """Nothing to do: the manifest PUT made the copy visible."""

    def abort(self) -> None:
        """Drop upload sessions a refused mount left open (best effort)."""
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            try:
                self.client.abort_upload(session)
            except LorryError as exc:
                log.debug("could not cancel upload %s: %s", session, exc)
