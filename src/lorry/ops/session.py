"""Registry sessions for operations: how pull, push and copy get (and share) a RegistrySession.

An operation uses one :class:`~lorry.registry.client.RegistrySession` (DESIGN.md §3). When the
caller passes one in, the operation borrows it and never closes it. Otherwise the operation opens
its own, and — because a layer download started by one pull may be shared by a concurrent pull
and outlive the operation that started it (xfer-spec §1.2) — closes it only when the last user
lets go: :class:`SessionLease` counts those users.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lorry.errors import InvalidReference, StoreError
from lorry.reference import Reference
from lorry.registry.auth import CredentialLookup
from lorry.registry.client import RegistrySession
from lorry.registry.config import RegistryConfig

__all__ = ["SessionLease", "SessionOptions", "check_remote_reference", "lease_session"]


@dataclass(frozen=True)
class SessionOptions:
    """How an operation opens its own session: host config, credentials, pool and timeout."""

    config: RegistryConfig | None = None
    credentials: CredentialLookup | None = None
    per_host_connections: int = 8
    timeout: float = 60.0

    def open(self) -> RegistrySession:
        """A new session with these options."""
        return RegistrySession(
            self.config,
            self.credentials,
            per_host_connections=self.per_host_connections,
            timeout=self.timeout,
        )


class SessionLease:
    """A session shared by an operation and the transfers it starts; closed by the last user.

    The operation holds the first reference; every descriptor that may outlive it takes one
    with :meth:`acquire` and gives it back with :meth:`release`. A borrowed session
    (``owned=False``) is never closed here. Thread-safe.
    """

    def __init__(self, session: RegistrySession, *, owned: bool) -> None:
        self.session = session
        self._owned = owned
        self._users = 1
        self._lock = threading.Lock()

    def acquire(self) -> RegistrySession:
        """Take one more reference and return the session."""
        with self._lock:
            if self._users <= 0:
                raise StoreError("internal error: registry session used after it was closed")
            self._users += 1
        return self.session

    def release(self) -> None:
        """Drop one reference; the owned session closes when none is left."""
        with self._lock:
            self._users -= 1
            last = self._users == 0
        if last and self._owned:
            self.session.close()

    @property
    def users(self) -> int:
        """How many references are held (for tests and debugging)."""
        with self._lock:
            return self._users


def lease_session(
    session: RegistrySession | None, options: SessionOptions | None = None
) -> SessionLease:
    """Borrow ``session`` if given, else open one with ``options``; the caller holds one ref."""
    if session is not None:
        return SessionLease(session, owned=False)
    return SessionLease((options or SessionOptions()).open(), owned=True)


def check_remote_reference(ref: Reference) -> Reference:
    """Refuse a reference that names no registry (Docker's ``foo_bar.com/app`` quirk)."""
    if not ref.registry:
        raise InvalidReference(
            f'invalid reference "{ref}": no registry host; write it as HOST/{ref.repository}'
        )
    return ref
