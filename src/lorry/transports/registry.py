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
from lorry.transports.protocols import BlobOpener, DestinationProperties

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
        self._verifier: Verifier | None = None

    def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes (all the rest with -1); b"" at the end."""
        if self._chunks is None:
            self._reopen()
        out = bytearray()
        while n < 0 or len(out) < n:
            if not self._buffer:
                assert self._chunks is not None
                self._buffer = next(self._chunks, b"")
                if not self._buffer:
                    break
            take = len(self._buffer) if n < 0 else min(n - len(out), len(self._buffer))
            out += self._buffer[:take]
            self._buffer = self._buffer[take:]
        self._position += len(out)
        if self._verifier is not None:
            self._verifier.update(out)
            if self._position >= self.desc.size:
                self._verifier.verify()
        return bytes(out)

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
        self._buffer = b""
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

    ``tag`` is where the top document goes (None: by digest only). Blobs the repository has
    are reused (HEAD); ``mount_from`` lists repositories of the same registry to try a
    cross-repository mount from first (a registry → registry copy passes its source).
    """

    def __init__(
        self,
        client: RegistryClient,
        tag: str | None,
        *,
        mount_from: tuple[str, ...] = (),
        chunked: bool | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.client = client
        self.tag = tag
        self.mount_from = tuple(r for r in mount_from if r != client.repository)
        self.chunked = chunked
        self.chunk_size = chunk_size
        #: The digest the registry serves under ``tag`` after the top document went up.
        self.pushed: Digest | None = None
        self._sessions: dict[Digest, UploadSession] = {}

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

    def reuse_blob(self, desc: Descriptor) -> bool:
        """True when the repository has the blob or a mount of it succeeded."""
        if self.client.stat_blob(desc.digest) is not None:
            return True
        for repo in self.mount_from:
            got = self.client.mount_blob(desc.digest, repo)
            if got is True:
                return True
            self._sessions[desc.digest] = got  # a refused mount hands back an upload session
            break
        return False

    def put_blob(self, desc: Descriptor, open_at: BlobOpener) -> None:
        """Upload the blob from offset 0 (a registry cannot resume another client's upload)."""
        session = self._sessions.pop(desc.digest, None)
        body = OpenedReader(desc, open_at)
        try:
            send_blob(
                self.client, desc, body, session, chunked=self.chunked, chunk_size=self.chunk_size
            )
        finally:
            body.close()

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
        for session in self._sessions.values():
            self.client.abort_upload(session)
        self._sessions.clear()
