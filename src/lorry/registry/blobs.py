"""Blobs: existence checks and streaming downloads that can start at any offset.

:func:`open_blob` returns a :class:`BlobReader`: a file-like stream read in 1 MiB chunks from a
worker thread. It asks for ``Accept-Encoding: identity`` (so ranges mean stored bytes), follows
redirects to blob storage without ``Authorization``, and resumes with ``Range``: only a 206 whose
``Content-Range`` starts at the offset is accepted; a 200 means the server ignored the range and
the prefix is read and skipped (logged at debug level). Resuming after a dropped connection is
the caller's job: it calls :func:`open_blob` again with the offset reached, which always starts
at the registry URL again, never at the storage URL a redirect handed out (those expire).

A :class:`~lorry.digest.Verifier` handed to the reader (or ``verify=True`` from offset 0) sees
every byte and is checked at the end, so a flipped byte ends in an IntegrityError naming the blob
and the registry. Foreign layers are tried at their ``urls`` first, then at the registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from types import TracebackType

from lorry.digest import Digest, Verifier
from lorry.errors import IntegrityError, InvalidInputError, LorryError, UnavailableError
from lorry.registry.auth import scope_pull
from lorry.registry.redact import get_logger, redact_url
from lorry.registry.repo import RepoContext
from lorry.registry.session import Response

__all__ = ["CHUNK_SIZE", "BlobReader", "blob_label", "open_blob", "stat_blob"]

log = get_logger(__name__)

#: Read size of :meth:`BlobReader.__iter__`: 8 KiB reads cost twice the CPU of 1 MiB reads.
CHUNK_SIZE = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def blob_label(digest: Digest) -> str:
    """How messages name a blob: ``blob sha256:0123456789ab…``."""
    return f"blob {digest.algorithm}:{digest.short}…"


def stat_blob(ctx: RepoContext, digest: Digest) -> int | None:
    """The blob's size if the repository has it, else None."""
    what = f"checking {blob_label(digest)} in {ctx.name}"
    with ctx.read("HEAD", f"/blobs/{digest}", what=what, expect=(200, 404)) as resp:
        if resp.status == 404:
            return None
        size = resp.content_length
    if size is None:
        raise UnavailableError(f"{what}: registry sent no Content-Length")
    return size


class BlobReader:
    """A blob's bytes from ``offset`` on; ``read``/iterate, then ``close`` (or use ``with``)."""

    def __init__(
        self,
        resp: Response | None,
        *,
        digest: Digest,
        offset: int,
        size: int | None,
        what: str,
        verifier: Verifier | None,
    ) -> None:
        self._resp = resp
        self.digest = digest
        #: Where this stream starts in the blob.
        self.offset = offset
        #: The blob's total size, when the registry or the caller said.
        self.size = size
        #: Bytes of the blob delivered so far, counting from the start of the blob.
        self.position = offset
        self.url = redact_url(resp.url) if resp is not None else ""
        self._what = what
        self._verifier = verifier
        self._failed: LorryError | None = None

    def read(self, n: int = CHUNK_SIZE) -> bytes:
        """Up to ``n`` bytes (all the rest when ``n`` < 0); b"" at the verified end.

        Bytes that arrived before a connection failed are returned first; the failure is
        raised by the next call, so :attr:`position` is exactly where to resume. Asked for all
        the rest (``n`` < 0), a failure is raised at once: a prefix is not what was asked for,
        and returned it would look like a complete but corrupt blob. The socket's pieces are
        joined once (growing a buffer and copying it out cost a pull of many small layers
        about a quarter of its download threads' CPU).
        """
        if self._failed is not None:
            exc, self._failed = self._failed, None
            raise exc
        if self._resp is None:
            return b""
        want = n if n >= 0 else 1 << 62
        parts: list[bytes] = []
        got = 0
        while got < want:
            try:
                data = self._resp.read1(min(want - got, CHUNK_SIZE))
            except LorryError as exc:
                self.close()
                failure = type(exc)(f"{exc} (at byte {self.position + got})", status=exc.status)
                failure.__cause__ = exc
                if not parts or n < 0:
                    raise failure from exc
                self._failed = failure
                break
            if not data:
                break
            parts.append(data)
            got += len(data)
        if not parts:
            self._end()
            return b""
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self.position += got
        if self._verifier is not None:
            self._verifier.update(data)
        if n < 0 and self._failed is None:
            self._end()
        return data

    def _end(self) -> None:
        """The body ended: check its length and, with a verifier, its digest."""
        self.close()
        if self.size is not None and self.position != self.size:
            raise UnavailableError(
                f"{self._what}: body ended at byte {self.position} of {self.size}"
            )
        if self._verifier is not None:
            self._verifier.verify()

    def __iter__(self) -> Iterator[bytes]:
        """The rest of the blob in chunks of :data:`CHUNK_SIZE` bytes."""
        while chunk := self.read(CHUNK_SIZE):
            yield chunk

    def close(self) -> None:
        """Release the connection (early close is allowed)."""
        resp, self._resp = self._resp, None
        if resp is not None:
            resp.close()

    def abort(self) -> None:
        """From another thread: cut the connection so a blocked :meth:`read` fails at once."""
        resp = self._resp
        if resp is not None:
            resp.abort()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_blob(
    ctx: RepoContext,
    digest: Digest,
    offset: int = 0,
    *,
    size: int | None = None,
    urls: Sequence[str] = (),
    verify: bool = False,
    verifier: Verifier | None = None,
) -> BlobReader:
    """Stream the blob from ``offset``; see the module docstring for the rules."""
    what = f"fetching {blob_label(digest)} from {ctx.name}"
    if offset < 0 or (size is not None and offset > size):
        raise InvalidInputError(f"{what}: offset {offset} outside the blob")
    if verifier is None and verify:
        if offset:
            raise InvalidInputError(f"{what}: verify=True needs offset 0 (pass a verifier)")
        verifier = Verifier(digest, size, what=f"{blob_label(digest)} from {ctx.name}")
    if size is not None and offset == size:
        return BlobReader(
            None, digest=digest, offset=offset, size=size, what=what, verifier=verifier
        )
    resp = _fetch(ctx, digest, offset, urls, what)
    try:
        total = _check_range(resp, offset, size, what)
    except BaseException:
        resp.close()
        raise
    reader = BlobReader(resp, digest=digest, offset=0, size=total, what=what, verifier=None)
    if resp.status == 200 and offset:
        log.debug("%s: server ignored Range; skipping %d bytes of the body", what, offset)
        _skip(reader, offset)
    reader.offset = reader.position = offset
    reader._verifier = verifier
    return reader


def _fetch(
    ctx: RepoContext, digest: Digest, offset: int, urls: Sequence[str], what: str
) -> Response:
    """GET the blob from its foreign ``urls`` (if any), then mirrors and the registry."""
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    for url in urls:
        if not url.startswith(("https://", "http://")):
            continue
        try:
            return ctx.transport.request(
                "GET",
                url,
                endpoint=ctx.endpoint,
                scopes=[scope_pull(ctx.repository)],
                what=what,
                headers=headers,
                expect=(200, 206),
            )
        except LorryError as exc:
            log.debug("%s: foreign URL %s failed (%s)", what, redact_url(url), exc)
    return ctx.read("GET", f"/blobs/{digest}", what=what, headers=headers, expect=(200, 206))


def _check_range(resp: Response, offset: int, size: int | None, what: str) -> int | None:
    """The blob's total size from the response, after checking it against the request."""
    length = resp.content_length
    if resp.status == 206:
        m = _CONTENT_RANGE.fullmatch((resp.header("Content-Range") or "").strip())
        if not m or int(m.group(1)) != offset:
            raise UnavailableError(
                f"{what}: 206 with Content-Range {resp.header('Content-Range')!r}, "
                f"expected a range starting at {offset}"
            )
        total = None if m.group(3) == "*" else int(m.group(3))
    else:
        total = length
    if size is not None and total is not None and total != size:
        raise IntegrityError(f"{what}: registry says {total} bytes, expected {size}")
    return total if total is not None else size


def _skip(reader: BlobReader, n: int) -> None:
    """Read and drop the first ``n`` bytes of a full body."""
    while n > 0:
        data = reader.read(min(CHUNK_SIZE, n))
        if not data:
            raise UnavailableError(f"{reader._what}: body ended while skipping to the offset")
        n -= len(data)
