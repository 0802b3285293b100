"""Fixture documents for the lorry.oci tests (tests/unit/data/oci, written by hand for lorry)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent.parent / "data" / "oci"


@pytest.fixture
def fixture_bytes() -> dict[str, bytes]:
    """Every fixture document by file stem, as the exact bytes on disk."""
    return {p.stem: p.read_bytes() for p in DATA.glob("*.json")}
