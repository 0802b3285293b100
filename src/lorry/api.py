"""The typed top-level API: ``pull``, ``push`` and ``copy`` as a library caller wants them.

Each takes the operation's options object and, by default, does what the ``lorry`` command
does: settings from ``lorry.toml`` and ``LORRY_*`` variables (:func:`lorry.settings.load`),
credentials from docker's ``config.json`` and credential helpers, and the store at the
configured root (opened for the call and closed after, unless you pass one). The ``*_sync``
twins block until done; inside a running event loop they run the work on a worker thread
(:func:`lorry.ops.blocking.run_blocking`), so prefer ``await`` there.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from lorry.ops.blocking import run_blocking
from lorry.ops.copy import CopyOptions, CopyResult
from lorry.ops.copy import copy as _copy
from lorry.ops.pull import PullOptions, PullResult
from lorry.ops.push import PushOptions, PushResult
from lorry.ops.settings_bridge import (
    limits,
    pull_with_settings,
    push_with_settings,
    retry_policy,
    session_options,
    stall_timeout,
)
from lorry.progress import ProgressSink
from lorry.reference import Reference
from lorry.settings import Settings, load
from lorry.store import Store
from lorry.transfer import DEFAULT_STALL_TIMEOUT
from lorry.transports.names import parse_transport

__all__ = [
    "CopyOptions",
    "CopyResult",
    "PullOptions",
    "PullResult",
    "PushOptions",
    "PushResult",
    "copy",
    "copy_sync",
    "pull",
    "pull_sync",
    "push",
    "push_sync",
]


@asynccontextmanager
async def _store(store: Store | None, settings: Settings) -> AsyncIterator[Store]:
    """The caller's store (borrowed), else the configured one, opened for this call."""
    if store is not None:
        yield store
        return
    with Store.open(settings.root) as opened:
        yield opened


async def pull(
    ref: str | Reference,
    options: PullOptions | None = None,
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    sink: ProgressSink | None = None,
) -> PullResult:
    """Pull ``ref`` into the store, as ``lorry pull`` does; progress events go to ``sink``.

    Limits, retries and the stall timeout the ``options`` leave at their defaults come from
    ``settings`` (default: :func:`lorry.settings.load`).
    """
    conf = settings if settings is not None else load()
    opts = options or PullOptions()
    fields = {
        "platform": opts.platform,
        "all_platforms": opts.all_platforms,
        "all_tags": opts.all_tags,
        "limits": opts.limits or limits(conf),
        "retry": opts.retry or retry_policy(conf),
        "stall_timeout": (
            opts.stall_timeout
            if opts.stall_timeout != DEFAULT_STALL_TIMEOUT
            else stall_timeout(conf)
        ),
    }
    async with _store(store, conf) as target:
        return await pull_with_settings(ref, store=target, settings=conf, sink=sink, **fields)


async def push(
    src: str | Reference,
    dst: str | Reference | None = None,
    options: PushOptions | None = None,
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    sink: ProgressSink | None = None,
) -> PushResult:
    """Push the local image ``src`` to ``dst`` (default: the registry ``src`` names)."""
    conf = settings if settings is not None else load()
    opts = options or PushOptions()
    merged = replace(
        opts, limits=opts.limits or limits(conf), retry=opts.retry or retry_policy(conf)
    )
    fields = {f: getattr(merged, f) for f in merged.__dataclass_fields__}
    async with _store(store, conf) as source:
        return await push_with_settings(src, dst, store=source, settings=conf, sink=sink, **fields)


async def copy(
    src: str,
    dst: str,
    options: CopyOptions | None = None,
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    sink: ProgressSink | None = None,
) -> CopyResult:
    """Copy between two transport references (``docker://``, ``oci:``, ``lorry:``, …).

    The store is opened only when one side is ``lorry:`` and no ``store`` was given.
    """
    conf = settings if settings is not None else load()
    opts = options or CopyOptions()
    opts = replace(opts, limits=opts.limits or limits(conf), retry=opts.retry or retry_policy(conf))
    sessions = session_options(conf)
    if store is not None or all(parse_transport(r).transport != "lorry" for r in (src, dst)):
        return await _copy(src, dst, opts, sink=sink, session_options=sessions, store=store)
    async with _store(None, conf) as local:
        return await _copy(src, dst, opts, sink=sink, session_options=sessions, store=local)


def pull_sync(
    ref: str | Reference,
    options: PullOptions | None = None,
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    sink: ProgressSink | None = None,
) -> PullResult:
    """Blocking :func:`pull` (on a worker thread when called inside a running event loop)."""
    return run_blocking(lambda: pull(ref, options, store=store, settings=settings, sink=sink))


def push_sync(
    src: str | Reference,
    dst: str | Reference | None = None,
    options: PushOptions | None = None,
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    sink: ProgressSink | None = None,
) -> PushResult:
    """Blocking :func:`push` (on a worker thread when called inside a running event loop)."""
    return run_blocking(lambda: push(src, dst, options, store=store, settings=settings, sink=sink))


def copy_sync(
    src: str,
    dst: str,
    options: CopyOptions | None = None,
    *,
    store: Store | None = None,
    settings: Settings | None = None,
    sink: ProgressSink | None = None,
) -> CopyResult:
    """Blocking :func:`copy` (on a worker thread when called inside a running event loop)."""
    return run_blocking(lambda: copy(src, dst, options, store=store, settings=settings, sink=sink))
