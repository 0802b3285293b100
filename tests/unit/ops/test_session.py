"""Session leases: an operation's session closes with its last user, a borrowed one never."""

from __future__ import annotations

import pytest

from lorry.errors import InvalidReference, StoreError
from lorry.ops.session import SessionLease, SessionOptions, check_remote_reference, lease_session
from lorry.reference import Reference, parse
from lorry.registry.client import RegistrySession


class FakeSession(RegistrySession):
    """Counts close() calls; never talks to anything."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1
        super().close()


def test_owned_session_closes_with_the_last_user() -> None:
    session = FakeSession()
    lease = SessionLease(session, owned=True)
    assert lease.acquire() is session
    lease.release()
    assert session.closed == 0 and lease.users == 1
    lease.release()
    assert session.closed == 1
    with pytest.raises(StoreError):
        lease.acquire()


def test_borrowed_session_is_never_closed() -> None:
    session = FakeSession()
    lease = lease_session(session)
    lease.acquire()
    lease.release()
    lease.release()
    assert session.closed == 0


def test_options_open_a_new_session() -> None:
    lease = lease_session(None, SessionOptions(timeout=5.0, per_host_connections=2))
    assert lease.session.pool.timeout == 5.0 and lease.session.pool.per_host == 2
    lease.release()


def test_reference_without_registry_is_refused() -> None:
    odd = parse("foo_bar.com/baz")
    assert odd.registry == ""
    with pytest.raises(InvalidReference, match="no registry host"):
        check_remote_reference(odd)
    ok = Reference("127.0.0.1:5000", "app", "v1")
    assert check_remote_reference(ok) is ok
