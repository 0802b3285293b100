"""Fixtures of the transfer-layer tests: anyio on asyncio, and a fake clock."""

from __future__ import annotations

import pytest
from xfer_fakes import FakeClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
