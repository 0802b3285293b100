"""Blob uploads: start, cross-repository mount, monolithic or chunked transfer, abort.

An upload session is a ``Location`` URL. It may be relative or absolute and may point at
another host; it is resolved against the URL of the response that carried it, its query
(``_state`` changes with every PATCH) is kept, and ``digest=`` is appended with ``&`` when it
already has one. ``Authorization`` goes only to the registry's own origin.

Monolithic uploads stream the body in one PUT. Chunked uploads send PATCHes with an inclusive
``Content-Range: <start>-<end>`` (no ``bytes `` prefix), read the next offset from the ``Range``
reply, honour ``OCI-Chunk-Min-Length``, and recover from a 416 by asking the upload URL where it
stands (GET, 204 + ``Range``); a chunk that makes no progress three times running fails. A chunk
streams from a stream that can seek (seeking back to replay it after a lost connection or an
expired token); from one that cannot, it is held in memory first. A monolithic body is replayed
only when the stream can seek.

Any failure DELETEs the session before the error is raised, except, when the caller asks to keep
it, a chunked upload's failure that may pass (lost connection, 5xx, cancellation): that session
stays open, and a later process continues it with :func:`resume_upload` (GET on its URL; the
registry's ``Range`` says where). Only a URL on the registry's own origin is ever asked.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urljoin

from lorry.digest import Digest
from lorry.errors import (
    CancelledError,
    IntegrityError,
    InvalidInputError,
    LorryError,
    UnavailableError,
    is_retryable,
)
from lorry.registry.auth import scope_pull
from lorry.registry.blobs import blob_label
from lorry.registry.config import Endpoint
from lorry.registry.redact import get_logger
from lorry.registry.repo import RepoContext
from lorry.registry.session import Origin, Response
from lorry.registry.transport import BodySource
from lorry.registry.upload_bodies import ChunkSource, Readable, SizedBody, monolithic_body

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkHook",
    "Readable",
    "UploadSession",
    "abort_upload",
    "mount_blob",
    "on_home_origin",
    "resume_upload",
    "start_upload",
    "upload_blob",
]

log = get_logger(__name__)

#: Default PATCH size for chunked uploads (GHCR refuses chunks much above 4 MiB).
DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024
_RANGE = re.compile(r"(?:bytes=)?(\d+)-(\d+)")
#: Failed attempts at one offset (each followed by a status check) before a chunk fails for good.
_MAX_NO_PROGRESS = 3


@dataclass
class UploadSession:
    """An upload in progress: where to send the next request and how far it got."""

    #: Absolute URL of the session, with its query (``_state``) as the registry last sent it.
    location: str
    #: The registry endpoint that owns the session.
    endpoint: Endpoint
    #: ``OCI-Chunk-Min-Length``: the smallest chunk the registry accepts (except the last).
    min_chunk: int | None = None
    #: Bytes the registry has accepted so far.
    offset: int = 0
    #: Set once the session is committed or deleted.
    done: bool = field(default=False)


#: Called after every chunk the registry accepted (the session holds its new URL and offset).
ChunkHook = Callable[[UploadSession], None]


def on_home_origin(location: str, endpoint: Endpoint) -> bool:
    """True when an upload URL is on the registry's own origin (the one that gets credentials)."""
    try:
        return Origin.of(location) == Origin.of(endpoint.base_url)
    except LorryError:
        return False


def _session_from(resp: Response, endpoint: Endpoint, what: str) -> UploadSession:
    """The session a 202 response opened."""
    location = resp.header("Location")
    if not location:
        raise UnavailableError(f"{what}: registry sent no upload Location")
    min_chunk = resp.header("OCI-Chunk-Min-Length")
    return UploadSession(
        location=urljoin(resp.url, location),
        endpoint=endpoint,
        min_chunk=int(min_chunk) if min_chunk and min_chunk.isdigit() else None,
    )


def start_upload(ctx: RepoContext) -> UploadSession:
    """Open an upload session in the repository."""
    what = f"starting an upload to {ctx.name}"
    url = ctx.url(ctx.endpoint, "/blobs/uploads/")
    with ctx.write("POST", url, what=what, expect=(202,)) as resp:
        session = _session_from(resp, ctx.endpoint, what)
        resp.drain()
    return session


def resume_upload(
    ctx: RepoContext, location: str, min_chunk: int | None = None
) -> UploadSession | None:
    """The session at a saved upload URL, at the offset the registry reports; None when gone.

    GET on the URL (204 + ``Range``). A URL off the registry's own origin is not asked (None);
    nor is one whose answer is not a session status: the registry forgot or invalidated it
    (docker-registry does when it holds bytes past the offset the URL's ``_state`` names).
    A temporary failure (lost connection, 5xx) is raised: the session may still be there.
    """
    if not on_home_origin(location, ctx.endpoint):
        log.debug("not resuming an upload to %s: its URL is on another host", ctx.name)
        return None
    session = UploadSession(location=location, endpoint=ctx.endpoint, min_chunk=min_chunk)
    what = f"asking where an upload to {ctx.name} stands"
    try:
        with ctx.write("GET", location, what=what, expect=(200, 204)) as resp:
            _advance(session, resp, what, empty_if_zero=True)
            resp.drain()
    except LorryError as exc:
        if is_retryable(exc):
            raise
        log.debug("%s: the session is gone (%s)", what, exc)
        return None
    if not on_home_origin(session.location, ctx.endpoint):
        log.debug("not resuming an upload to %s: the registry moved it to another host", ctx.name)
        return None
    return session


def mount_blob(ctx: RepoContext, digest: Digest, from_repo: str) -> Literal[True] | UploadSession:
    """Mount a blob from another repository of the registry.

    Returns True when mounted (201), or an open upload session to continue with: the one the
    registry opened when it declined the mount (202), or a fresh one after a mount error.
    The token asks for ``repository:<from_repo>:pull`` too; a token service may drop it.
    """
    what = f"mounting {blob_label(digest)} from {from_repo} into {ctx.name}"
    query = f"?mount={quote(str(digest), safe=':')}&from={quote(from_repo)}"
    url = ctx.url(ctx.endpoint, "/blobs/uploads/" + query)
    try:
        resp = ctx.write(
            "POST", url, what=what, expect=(201, 202), extra_scopes=(scope_pull(from_repo),)
        )
    except LorryError as exc:
        log.debug("%s failed (%s); uploading instead", what, exc)
        return start_upload(ctx)
    with resp:
        if resp.status == 201:
            resp.drain()
            return True
        session = _session_from(resp, ctx.endpoint, what)
        resp.drain()
    return session


def upload_blob(
    ctx: RepoContext,
    session: UploadSession,
    stream: Readable,
    digest: Digest,
    size: int,
    *,
    chunked: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_chunk: ChunkHook | None = None,
    keep_on_failure: bool = False,
) -> Digest:
    """Send the bytes of ``stream`` from ``session.offset`` to ``size``, commit them as ``digest``.

    ``stream`` stands at ``session.offset`` (0 for a new session). ``on_chunk`` sees every
    accepted chunk. On a failure the session is deleted and the error re-raised; with
    ``keep_on_failure``, a chunked upload that fails in a way that may pass (a lost connection,
    a 5xx, cancellation) keeps its session open instead (``done`` stays False).
    """
    what = f"pushing {blob_label(digest)} to {ctx.name}"
    if session.done:
        raise InvalidInputError(f"{what}: upload session already finished")
    try:
        if chunked:
            _send_chunks(
                ctx,
                session,
                stream=stream,
                size=size,
                chunk_size=chunk_size,
                what=what,
                on_chunk=on_chunk,
            )
            result = _commit(ctx, session, digest, None, what)
        else:
            if session.offset:
                raise InvalidInputError(f"{what}: a monolithic upload cannot continue a session")
            result = _commit(ctx, session, digest, monolithic_body(stream, size, what), what)
    except BaseException as exc:
        if not (chunked and keep_on_failure and _may_pass(exc)):
            abort_upload(ctx, session)
        raise
    return result


def _may_pass(exc: BaseException) -> bool:
    """Whether an upload that failed so is worth continuing later (its session kept open)."""
    if isinstance(exc, CancelledError) or not isinstance(exc, Exception):
        return True  # cancelled (Ctrl-C, a failed sibling transfer): the next push continues
    return is_retryable(exc)


def abort_upload(ctx: RepoContext, session: UploadSession) -> None:
    """DELETE the session (best effort: a failure is logged, not raised)."""
    if session.done:
        return
    session.done = True
    try:
        with ctx.write(
            "DELETE",
            session.location,
            what=f"cancelling an upload to {ctx.name}",
            expect=(200, 202, 204, 404),
        ) as resp:
            resp.drain()
    except LorryError as exc:
        log.debug("cancelling an upload to %s failed: %s", ctx.name, exc)


def _with_digest(location: str, digest: Digest) -> str:
    """The session URL with ``digest=`` appended to whatever query it has."""
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}digest={quote(str(digest), safe=':')}"


def _commit(
    ctx: RepoContext,
    session: UploadSession,
    digest: Digest,
    body: SizedBody | None,
    what: str,
) -> Digest:
    """The closing PUT (with the whole-blob digest); check what the registry says it stored."""
    headers = {"Content-Type": "application/octet-stream"}
    if body is not None:
        headers["Content-Length"] = str(body.size)
    url = _with_digest(session.location, digest)
    with ctx.write("PUT", url, what=what, headers=headers, body=body, expect=(201,)) as resp:
        stored = resp.header("Docker-Content-Digest")
        resp.drain()
    session.done = True
    if stored and stored != str(digest):
        raise IntegrityError(f"{what}: registry stored it as {stored}")
    return digest


def _send_chunks(
    ctx: RepoContext,
    session: UploadSession,
    *,
    stream: Readable,
    size: int,
    chunk_size: int,
    what: str,
    on_chunk: ChunkHook | None,
) -> None:
    """PATCH the blob in chunks from ``session.offset`` until the registry has ``size`` bytes."""
    step = max(chunk_size, session.min_chunk or 0, 1)
    source = ChunkSource(stream, session.offset, what)
    no_progress = 0
    while session.offset < size:
        start = session.offset
        length = min(step, size - start)
        try:
            _patch(ctx, session, source.body(start, length), length, what)
        except LorryError as exc:
            lost = _session_lost(exc)
            if exc.status != 416 and not lost and not is_retryable(exc):
                raise
            log.debug(
                "%s: chunk at %d failed (%s); asking the registry where it stands", what, start, exc
            )
            if not _recover(ctx, session, what, start):
                if lost:  # retryable: the caller sends the whole blob again in a new session
                    abort_upload(ctx, session)
                    raise UnavailableError(
                        f"{what}: the registry dropped the upload session at byte {start}",
                        status=exc.status,
                        url=exc.url,
                        codes=exc.codes,
                    ) from exc
                raise
            if not source.can_resend(session.offset) or session.offset > start + length:
                raise UnavailableError(
                    f"{what}: registry is at byte {session.offset}, chunk was {start}-"
                    f"{start + length - 1}; cannot rewind the source"
                ) from exc
            no_progress = no_progress + 1 if session.offset <= start else 0
            if no_progress >= _MAX_NO_PROGRESS:
                raise
            continue
        no_progress = 0
        if on_chunk is not None:
            on_chunk(session)


def _session_lost(exc: LorryError) -> bool:
    """True when the registry says the upload session is gone (e.g. it saw half a chunk)."""
    return exc.status == 404 and bool(
        {"BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"} & set(exc.codes)
    )


def _patch(
    ctx: RepoContext, session: UploadSession, chunk: BodySource, length: int, what: str
) -> None:
    """Send one chunk; move the session to the Location and offset the reply gives."""
    start = session.offset
    end = start + length - 1
    headers = {
        "Content-Type": "application/octet-stream",
        "Content-Range": f"{start}-{end}",
        "Content-Length": str(length),
    }
    with ctx.write(
        "PATCH",
        session.location,
        what=what,
        headers=headers,
        body=chunk,
        expect=(202,),
        retry=False,
    ) as resp:
        _advance(session, resp, what)
        resp.drain()
    if session.offset != end + 1:
        raise UnavailableError(
            f"{what}: registry acknowledged up to byte {session.offset}, expected {end + 1}"
        )


def _recover(ctx: RepoContext, session: UploadSession, what: str, start: int) -> bool:
    """After a failed chunk, learn where the session stands; False when it cannot go on.

    A 416 or a lost connection leaves the session at some offset (GET: 204 with ``Range``).
    A registry that saw half a chunk may declare the session invalid; when the lost chunk
    was the first, a new session starts from byte 0, since nothing else needs resending.
    """
    try:
        with ctx.write("GET", session.location, what=what, expect=(204,)) as resp:
            _advance(session, resp, what, empty_if_zero=True)
            resp.drain()
    except LorryError as exc:
        if start != 0:
            return False
        log.debug("%s: upload session is gone (%s); starting a new one", what, exc)
        abort_upload(ctx, session)
        fresh = start_upload(ctx)
        session.location, session.min_chunk, session.offset = (
            fresh.location,
            fresh.min_chunk,
            0,
        )
        session.done = False
        return True
    log.debug("%s: registry has %d bytes; continuing there", what, session.offset)
    return True


def _advance(
    session: UploadSession, resp: Response, what: str, *, empty_if_zero: bool = False
) -> None:
    """Take the new Location and offset from a PATCH or status reply.

    ``Range: 0-0`` means either nothing or one byte; a status reply reads it as nothing.
    """
    location = resp.header("Location")
    if location:
        session.location = urljoin(resp.url, location)
    reported = resp.header("Range")
    if reported:
        m = _RANGE.fullmatch(reported.strip())
        if not m:
            raise UnavailableError(f"{what}: malformed Range {reported!r} in the reply")
        end = int(m.group(2))
        session.offset = 0 if (empty_if_zero and end == 0) else end + 1
    else:
        session.offset = 0
