"""Helpers for the pull integration tests: push built images, pull them with fast retries."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lorry.ops.pull import PullOptions, PullResult, pull_sync
from lorry.progress import ProgressSink
from lorry.store import Store
from lorry.store.inspect import inspect_image
from lorry.testing.builder import BuiltImage
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout
from lorry.transfer import RetryPolicy

_names = itertools.count()

#: Retries without the 5 s waits, so fault tests stay fast.
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01)


def push(built: BuiltImage, registry: RegistryServer, repo: str = "pull/img") -> str:
    """Push ``built`` under a repository name unique to this session; return ``host/repo:tag``."""
    name = f"{repo}{next(_names)}"
    return push_layout(built, registry, name).removeprefix("docker://")


def pull(store: Store, ref: str, *, sink: ProgressSink | None = None, **fields: Any) -> PullResult:
    """Pull with fast retries unless the test says otherwise (``fields``: PullOptions)."""
    fields.setdefault("retry", FAST_RETRY)
    return pull_sync(ref, PullOptions(**fields), store=store, sink=sink)


def inspect(store: Store, result: PullResult) -> dict[str, Any]:
    """``lorry inspect`` of the pulled image."""
    return inspect_image(store, result.image_id)


def ingest_bytes(root: Path) -> int:
    """Bytes in the store's unfinished ingests; one finished (renamed) while we look counts 0."""
    total = 0
    for path in (root / "ingest").rglob("*.data"):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)
