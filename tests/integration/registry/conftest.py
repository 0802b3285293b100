"""Shared helpers for the registry-client integration tests: sessions with a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from lorry.registry.client import RegistrySession


@dataclass
class FakeTime:
    """A monotonic clock that only moves when something sleeps (or the test advances it)."""

    now: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


SessionFactory = Callable[..., RegistrySession]


@pytest.fixture
def make_session(fake_time: FakeTime) -> Iterator[SessionFactory]:
    """RegistrySession with no stored credentials unless given, and the fake clock."""
    sessions: list[RegistrySession] = []

    def make(**kw: Any) -> RegistrySession:
        kw.setdefault("credentials", lambda _host: None)
        kw.setdefault("clock", fake_time.clock)
        kw.setdefault("sleep", fake_time.sleep)
        session = RegistrySession(**kw)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()
