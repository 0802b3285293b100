"""Fixtures of the pull integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh local store."""
    with Store.open(tmp_path / "store") as s:
        yield s
