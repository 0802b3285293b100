"""Fixtures of the hostile-registry tests: a store root and deadlines short enough to wait for."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorry.registry import deadlines
from lorry.registry.deadlines import Deadlines

#: The deadlines in-process tests run under: the default rule, at a thirtieth of the time.
SHORT = Deadlines(head=1.0, body=1.0)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The store root of the test's lorry runs."""
    return tmp_path / "store"


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> Deadlines:
    """Every registry session this process opens uses :data:`SHORT` deadlines."""
    monkeypatch.setattr(deadlines, "DEFAULT_DEADLINES", SHORT)
    return SHORT
