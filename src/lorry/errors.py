"""The error kinds of lorry, and the one oracle that says whether a failure is worth retrying.

Every error lorry raises is a :class:`LorryError`; each kind is one subclass, so callers catch
by kind (``except NotFoundError``) and the CLI maps kinds to exit codes. Errors that come from a
registry carry the HTTP status, the (redacted) URL and the distribution-spec error codes.
Messages say what was being done and to what: ``fetching blob sha256:ab12… from
registry.example/app: digest mismatch``.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

__all__ = [
    "AuthError",
    "CancelledError",
    "DiskFullError",
    "IntegrityError",
    "InvalidInputError",
    "InvalidReference",
    "LorryError",
    "NotFoundError",
    "StallError",
    "StoreError",
    "UnavailableError",
    "UnsupportedError",
    "exit_code",
    "is_retryable",
]


class LorryError(Exception):
    """Root of every error lorry raises on purpose.

    ``status``, ``url`` and ``codes`` are set when the error came from a registry response;
    ``retry_after`` (seconds) when the server said how long to wait before trying again.
    """

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        url: str | None = None,
        codes: Sequence[str] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.url = url
        self.codes: tuple[str, ...] = tuple(codes)
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


class InvalidInputError(LorryError):
    """The user (or a document) gave something malformed: a bad reference, flag or manifest."""

    exit_code = 2


class InvalidReference(InvalidInputError, ValueError):  # noqa: N818 - name fixed by the contract
    """An image reference that breaks the reference grammar; the message names input and rule."""


class NotFoundError(LorryError):
    """The thing asked for does not exist: a repository, tag, manifest, blob or local image."""

    exit_code = 3


class IntegrityError(LorryError):
    """Bytes do not match what they claim to be: digest or size mismatch, DiffID mismatch."""

    exit_code = 4


class AuthError(LorryError):
    """Authentication or authorisation failed: no credentials, bad credentials, access denied."""

    exit_code = 5


class UnavailableError(LorryError):
    """A temporary failure: connection lost, 5xx, rate limited, timed out. Worth retrying."""

    exit_code = 6


class StallError(UnavailableError):
    """A transfer moved no bytes for longer than the stall timeout."""


class UnsupportedError(LorryError):
    """A valid thing lorry does not handle: an unknown media type, a missing registry feature."""

    exit_code = 7


class StoreError(LorryError):
    """The local store failed or is damaged; the message names the store path."""

    exit_code = 8


class DiskFullError(StoreError):
    """The local store ran out of space (ENOSPC); never retried."""


class CancelledError(LorryError):
    """An operation was cancelled by its caller (Ctrl-C, or every watcher let go)."""

    exit_code = 130


_PERMANENT_OS_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES})


def is_retryable(exc: BaseException) -> bool:
    """Say whether a failed attempt is worth another try: the single retry oracle of lorry.

    Temporary failures (lost connections, 5xx, 429, stalls, timeouts) are retried. Integrity
    errors, not-found, auth, unsupported, invalid input, disk-full and cancellation are not.
    """
    if isinstance(exc, UnavailableError):
        return True
    if isinstance(exc, LorryError):
        return False
    if isinstance(exc, OSError):
        return exc.errno not in _PERMANENT_OS_ERRNOS
    return isinstance(exc, EOFError | TimeoutError)


def exit_code(exc: BaseException) -> int:
    """The process exit code the CLI uses for an error of this kind."""
    if isinstance(exc, LorryError):
        return exc.exit_code
    return 1
