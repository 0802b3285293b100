"""From :class:`~lorry.settings.Settings` (plain data) to the objects operations run with.

``lorry.settings`` sits low in the layering and knows nothing of registries or transfers; this
module, in ``ops``, is where the two meet: the registry table becomes a
:class:`~lorry.registry.config.RegistryConfig` inside :class:`SessionOptions`, the numbers become
:class:`~lorry.transfer.Limits`, a :class:`~lorry.transfer.RetryPolicy` and a stall timeout.

:func:`pull_with_settings` and :func:`push_with_settings` run one operation with its own
transfer manager built from the settings, so that the configured limits are the manager's own
(a per-operation limit only tightens a manager's limit, it never widens it).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import anyio

from lorry.oci import Descriptor
from lorry.ops.pull import PullResult, download_manager, pull
from lorry.ops.push import PushResult, push
from lorry.ops.session import SessionOptions
from lorry.reference import Reference
from lorry.registry.auth import CredentialLookup
from lorry.registry.config import RegistryConfig
from lorry.settings import Settings
from lorry.store import Store
from lorry.transfer import Limits, RetryPolicy, UploadManager
from lorry.transfer.limits import default_cpu_limit

__all__ = [
    "limits",
    "pull_with_settings",
    "pull_with_settings_sync",
    "push_with_settings",
    "push_with_settings_sync",
    "registry_config",
    "retry_policy",
    "session_options",
    "stall_timeout",
]


def registry_config(settings: Settings) -> RegistryConfig:
    """The per-registry mirrors, insecure flags and CA files, as the registry client takes them."""
    return RegistryConfig.from_mapping(
        {
            host: {
                "mirrors": list(reg.mirrors),
                "insecure": reg.insecure,
                "ca_file": str(reg.ca_file) if reg.ca_file else None,
            }
            for host, reg in settings.registries.items()
        }
    )


def session_options(
    settings: Settings, *, credentials: CredentialLookup | None = None
) -> SessionOptions:
    """How operations open their registry sessions under these settings."""
    return SessionOptions(config=registry_config(settings), credentials=credentials)


def limits(settings: Settings) -> Limits:
    """The download, upload and CPU concurrency limits."""
    return Limits(
        downloads=settings.max_concurrent_downloads,
        uploads=settings.max_concurrent_uploads,
        cpu=settings.cpu if settings.cpu is not None else default_cpu_limit(),
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy: ``max_attempts`` total attempts per transfer."""
    return RetryPolicy(attempts=settings.max_attempts)


def stall_timeout(settings: Settings) -> float | None:
    """The stall timeout in seconds, or None when the settings turn it off (0)."""
    return settings.stall_timeout or None


async def pull_with_settings(
    ref: str | Reference, *, store: Store, settings: Settings, **options: Any
) -> PullResult:
    """:func:`lorry.ops.pull.pull` with a download manager, session and limits from settings.

    ``options`` are passed on (``platform``, ``sink``, ...) and win over the settings.
    """
    lim = options.pop("limits", None) or limits(settings)
    options.setdefault("session_options", session_options(settings))
    if options.get("download_manager") is not None:
        return await pull(ref, store=store, limits=lim, **options)
    retry = options.pop("retry", None) or retry_policy(settings)
    stall = options.pop("stall_timeout", stall_timeout(settings))
    async with download_manager(store, limits=lim, retry=retry, stall_timeout=stall) as dm:
        options["download_manager"] = dm
        return await pull(ref, store=store, limits=lim, **options)


def pull_with_settings_sync(ref: str | Reference, **options: Any) -> PullResult:
    """:func:`pull_with_settings` for synchronous callers (runs its own event loop)."""
    return anyio.run(partial(pull_with_settings, ref, **options), backend="asyncio")


async def push_with_settings(
    src: str | Reference,
    dst: str | Reference | None = None,
    *,
    store: Store,
    settings: Settings,
    **options: Any,
) -> PushResult:
    """:func:`lorry.ops.push.push` with an upload manager, session and limits from settings.

    ``options`` are passed on (``sink``, ``chunked``, ...) and win over the settings.
    """
    lim = options.pop("limits", None) or limits(settings)
    options.setdefault("session_options", session_options(settings))
    if options.get("uploads") is not None:
        return await push(src, dst, store=store, limits=lim, **options)
    retry = options.pop("retry", None) or retry_policy(settings)
    stall = options.pop("stall_timeout", stall_timeout(settings))
    async with UploadManager[Descriptor](limits=lim, retry=retry, stall_timeout=stall) as uploads:
        return await push(src, dst, store=store, limits=lim, uploads=uploads, **options)


def push_with_settings_sync(
    src: str | Reference, dst: str | Reference | None = None, **options: Any
) -> PushResult:
    """:func:`push_with_settings` for synchronous callers (runs its own event loop)."""
    return anyio.run(partial(push_with_settings, src, dst, **options), backend="asyncio")
