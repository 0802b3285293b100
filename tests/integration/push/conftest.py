"""Shared fixtures of the push tests: a store, a credential-free session, and a push helper."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from push_helpers import anonymous

from lorry.ops.push import PushOptions, PushResult, push_sync
from lorry.progress import CollectingSink
from lorry.store import Store

#: Push ``src`` (to ``dst``) from the test's store; returns the result and the events seen.
Pusher = Callable[..., tuple[PushResult, CollectingSink]]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as s:
        yield s


@pytest.fixture
def do_push(store: Store) -> Pusher:
    def run(
        src: str, dst: str | None = None, *, session_options: Any = None, **fields: Any
    ) -> tuple[PushResult, CollectingSink]:
        sink = CollectingSink()
        opts = PushOptions(**fields)
        sessions = session_options or anonymous()
        result = push_sync(src, dst, opts, store=store, sink=sink, session_options=sessions)
        return result, sink

    return run
