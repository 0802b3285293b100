"""Run the content-store conformance suite against the local store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry.store import LocalContentStore, Store
from lorry.testing.store_conformance import ContentStoreConformance


class TestLocalContentStore(ContentStoreConformance):
    """The local directory + SQLite implementation."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[LocalContentStore]:
        with Store.open(tmp_path / "root") as s:
            yield s.content
