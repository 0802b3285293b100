"""``docker://REF``: a registry repository as an image source and destination.

The source serves documents by tag or digest and blobs from any offset (the client resumes
with ``Range``). The destination reuses a blob the repository has (HEAD) or can mount from
another repository of the same registry, else uploads it: one streaming PUT, sent again as
PATCH chunks when the registry refuses the monolithic form. The bytes it sends are read
through :class:`OpenedReader`, which hashes what it hands over and fails before the last
chunk leaves when the digest is wrong, so a bad source never becomes a committed blob.

Given :class:`~lorry.transports.upload_state.UploadStates` (push: the store's), a large blob
goes up resumably instead: PATCH chunks of :data:`RESUME_CHUNK_SIZE`, the session saved after
each, so a later attempt or process asks the saved URL where the registry stands (GET,
``Range``) and sends only the rest, hashing the skipped prefix from the source. A registry that
refuses such chunks gets the monolithic form (and no more chunks from this destination).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Protocol

from lorry import mediatypes as mt
from lorry.digest import Digest, Verifier
from lorry.errors import (
    AuthError,
    CancelledError,
    IntegrityError,
    InvalidInputError,
    LorryError,
)
from lorry.oci import Descriptor
from lorry.reference import Reference
from lorry.registry import uploads
from lorry.registry.blobs import CHUNK_SIZE, BlobReader
from lorry.registry.client import RegistryClient
from lorry.registry.uploads import DEFAULT_CHUNK_SIZE, UploadSession, on_home_origin
from lorry.transports.protocols import (
    BlobMemory,
    BlobOpener,
    DestinationProperties,
    Mounted,
    Reuse,
    Skipped,
    WaitHook,
)
from lorry.transports.upload_state import UploadClaim, UploadStates

__all__ = [
    "RESUMABLE_MIN_SIZE",
    "RESUME_CHUNK_SIZE",
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
#: PATCH size of a resumable upload: at most this much is sent again after a kill.
RESUME_CHUNK_SIZE = 16 * 1024 * 1024
#: Blobs from this size go up resumably (by default, when progress can be saved).
RESUMABLE_MIN_SIZE = 2 * RESUME_CHUNK_SIZE


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

    Every byte is hashed; the read that would hand over the blob's last byte first checks size
    and digest (IntegrityError), so the registry never receives a complete bad body. ``seek``
    reopens the source at 0 and reads up to the new offset, hashing what it skips: a resent
    chunk, or an upload continued where the registry stands, is verified like any other.
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
            self.seek(self._position)
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
        """Go to ``offset`` (absolute only), hashing every byte before it from the source.

        Forward from an open source it reads on; backward (or unopened) it reopens at 0.
        """
        if whence != 0 or not 0 <= offset <= self.desc.size:
            raise InvalidInputError(f"blob {self.desc.digest}: cannot seek to {offset} ({whence})")
        if self._chunks is None or offset < self._position:
            self._reopen()
        while self._position < offset:
            if not self.read(min(CHUNK_SIZE, offset - self._position)):
                raise IntegrityError(
                    f"blob {self.desc.digest}: source ended after {self._position} bytes"
                )
        return offset

    def close(self) -> None:
        """Close the open source stream."""
        close = getattr(self._chunks, "close", None)
        if callable(close):
            close()
        self._chunks = None

    def _reopen(self) -> None:
        """Open the source at 0 with a fresh verifier."""
        self.close()
        self._buffer, self._at, self._position = b"", 0, 0
        self._verifier = Verifier(self.desc.digest, self.desc.size, what=f"blob {self.desc.digest}")
        self._chunks = iter(self._open_at(0))


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
        upload_states: UploadStates | None = None,
    ) -> None:
        self.client = client
        self.tag = tag
        self.mount_from = tuple(r for r in mount_from if r != client.repository)
        self.memory = memory
        self.allow_foreign = allow_foreign
        self.chunked = chunked
        self.chunk_size = chunk_size
        #: Where upload sessions are saved so a later push can continue them (None: nowhere).
        self.upload_states = upload_states
        #: Set when the registry refused resumable chunks: the rest go up monolithic.
        self.chunks_refused = False
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
        """Upload the blob: resumably when progress can be saved (see the module), else from 0."""
        with self._lock:
            session = self._sessions.pop(desc.digest, None)
        body = OpenedReader(desc, open_at)
        try:
            claim = self._claim(desc)
            if claim is None:
                send_blob(
                    self.client,
                    desc,
                    body,
                    session,
                    chunked=self.chunked,
                    chunk_size=self.chunk_size,
                )
            else:
                with claim:
                    self._send_resumable(desc, body, session, claim)
        finally:
            body.close()
        self._remember(desc)

    def _claim(self, desc: Descriptor) -> UploadClaim | None:
        """The saved-session claim for a resumable upload of ``desc``; None to upload plainly."""
        if self.upload_states is None or self.chunked is False:
            return None
        if self.chunked is None and (desc.size < RESUMABLE_MIN_SIZE or self.chunks_refused):
            return None
        return self.upload_states.claim(self.client.registry, self.client.repository, desc.digest)

    def _send_resumable(
        self,
        desc: Descriptor,
        body: OpenedReader,
        session: UploadSession | None,
        claim: UploadClaim,
    ) -> None:
        """Continue the saved session where the registry stands, else upload in saved chunks."""
        resumed = self._resume(desc, claim)
        if resumed is not None:
            if session is not None:
                self.client.abort_upload(session)  # a refused mount's: not needed now
            session = resumed
            log.debug(
                "%s: the registry has %d bytes; sending the rest", desc.digest, session.offset
            )
            body.seek(session.offset)  # hashes the prefix from the source; nothing is re-sent
        elif session is None:
            session = self.client.start_upload()
        accepted = [False]
        try:
            self._upload_saving(desc, body, session, claim, accepted)
        except LorryError as exc:
            if resumed is not None and isinstance(exc, IntegrityError) and exc.status is not None:
                log.debug("%s: the resumed upload did not verify (%s); sending it all", desc, exc)
                body.seek(0)
                self._upload_saving(desc, body, self.client.start_upload(), claim, [False])
            elif self.chunked is None and resumed is None and not accepted[0] and _refusal(exc):
                log.debug("%s; sending %s in one PUT instead of chunks", exc, desc.digest)
                self.chunks_refused = True
                body.seek(0)
                send_blob(self.client, desc, body, chunk_size=self.chunk_size)
            else:
                raise
        claim.discard()
        claim.release(finished=True)

    def _resume(self, desc: Descriptor, claim: UploadClaim) -> UploadSession | None:
        """The saved session of ``desc`` at the offset the registry reports, if it still fits."""
        ctx = self.client.ctx
        record = claim.load(desc.size, lambda url: on_home_origin(url, ctx.endpoint))
        if record is None:
            return None
        session = uploads.resume_upload(ctx, record.location, record.min_chunk)
        if session is not None and session.offset > desc.size:
            log.debug("%s: registry reports %d bytes, more than the blob", desc, session.offset)
            self.client.abort_upload(session)
            session = None
        if session is None:
            claim.discard()
        return session

    def _upload_saving(
        self,
        desc: Descriptor,
        body: OpenedReader,
        session: UploadSession,
        claim: UploadClaim,
        accepted: list[bool],
    ) -> None:
        """Upload in chunks from ``session.offset``, saving the session after each one."""
        endpoint = self.client.ctx.endpoint
        chunk_size = self.chunk_size if self.chunked else RESUME_CHUNK_SIZE

        def save(s: UploadSession, *, chunk: bool = True) -> None:
            accepted[0] = accepted[0] or chunk
            if on_home_origin(s.location, endpoint):
                claim.save(s.location, s.offset, desc.size, s.min_chunk)
            else:  # never ask another host with this registry's session in mind
                claim.discard()

        save(session, chunk=False)
        try:
            uploads.upload_blob(
                self.client.ctx,
                session,
                body,
                desc.digest,
                desc.size,
                chunked=True,
                chunk_size=chunk_size,
                on_chunk=save,
                keep_on_failure=True,
            )
        except BaseException:
            if session.done:  # deleted: nothing to continue
                claim.discard()
            raise

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


def _refusal(exc: LorryError) -> bool:
    """Whether a chunked upload that failed before its first chunk may go up in one PUT.

    Any such failure but a bad source, refused credentials or cancellation: registries refuse
    big chunks in their own ways (GHCR answers 416 above 4 MiB; others close the connection).
    """
    return not isinstance(exc, IntegrityError | AuthError | CancelledError)
