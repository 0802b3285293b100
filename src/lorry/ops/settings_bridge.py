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

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from lorry.ops.blocking import run_blocking
from lorry.ops.session import SessionOptions
from lorry.registry.auth import CredentialLookup
from lorry.registry.config import RegistryConfig
from lorry.settings import Settings
from lorry.transfer import Limits, RetryPolicy
from lorry.transfer.limits import default_cpu_limit

if TYPE_CHECKING:  # pull and push load only when used: sync, copy, unpack start faster
    from lorry.ops.pull import PullOptions, PullResult
    from lorry.ops.push import PushOptions, PushResult
    from lorry.progress import ProgressSink
    from lorry.reference import Reference
    from lorry.store import Store

__all__ = [
    "limits",
    "pull_options",
    "pull_with_settings",
    "pull_with_settings_sync",
    "push_options",
    "push_with_settings",
    "push_with_settings_sync",
    "registry_config",
    "retry_policy",
    "session_options",
    "stall_timeout",
]


def registry_config(settings: Settings) -> RegistryConfig:
    """The per-registry mirrors, insecure flags and CA files, the proxy and the TLS options, as
    the registry client takes them."""
    return RegistryConfig.from_mapping(
        {
            host: {
                "mirrors": list(reg.mirrors),
                "insecure": reg.insecure,
                "ca_file": str(reg.ca_file) if reg.ca_file else None,
            }
            for host, reg in settings.registries.items()
        },
        cert_dir=settings.cert_dir,
        tls_verify=settings.tls_verify,
        proxy=settings.proxy,
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


def pull_options(settings: Settings, **fields: Any) -> PullOptions:
    """:class:`PullOptions` with limits, retries and stall timeout from ``settings``.

    ``fields`` (``platform``, ``all_tags``, ``retry``, ...) win over the settings.
    """
    from lorry.ops.pull import PullOptions

    base = PullOptions(
        limits=limits(settings),
        retry=retry_policy(settings),
        stall_timeout=stall_timeout(settings),
        verify_diff_ids=settings.verify_diffids,
    )
    return replace(base, **fields)


def push_options(settings: Settings, **fields: Any) -> PushOptions:
    """:class:`PushOptions` with limits and retries from ``settings``; ``fields`` win."""
    from lorry.ops.push import PushOptions

    return replace(PushOptions(limits=limits(settings), retry=retry_policy(settings)), **fields)


async def pull_with_settings(
    ref: str | Reference,
    *,
    store: Store,
    settings: Settings,
    sink: ProgressSink | None = None,
    **fields: Any,
) -> PullResult:
    """:func:`lorry.ops.pull.pull` with its own download manager built from ``settings``.

    ``fields`` are :class:`PullOptions` fields and win over the settings.
    """
    from lorry.ops.pull import download_manager, pull

    opts = pull_options(settings, **fields)
    sessions = session_options(settings)
    manager = download_manager(
        store, limits=opts.limits, retry=opts.retry, stall_timeout=opts.stall_timeout
    )
    async with manager as dm:
        return await pull(
            ref, opts, store=store, sink=sink, session_options=sessions, download_manager=dm
        )


def pull_with_settings_sync(ref: str | Reference, **kw: Any) -> PullResult:
    """:func:`pull_with_settings`, blocking (see :mod:`lorry.ops.blocking`)."""
    return run_blocking(partial(pull_with_settings, ref, **kw))


async def push_with_settings(
    src: str | Reference,
    dst: str | Reference | None = None,
    *,
    store: Store,
    settings: Settings,
    sink: ProgressSink | None = None,
    **fields: Any,
) -> PushResult:
    """:func:`lorry.ops.push.push` with its own upload manager built from ``settings``.

    ``fields`` are :class:`PushOptions` fields and win over the settings.
    """
    from lorry.oci import Descriptor
    from lorry.ops.push import push
    from lorry.transfer import UploadManager

    opts = push_options(settings, **fields)
    sessions = session_options(settings)
    stall = stall_timeout(settings)
    manager = UploadManager[Descriptor](limits=opts.limits, retry=opts.retry, stall_timeout=stall)
    async with manager as uploads:
        return await push(
            src, dst, opts, store=store, sink=sink, session_options=sessions, uploads=uploads
        )


def push_with_settings_sync(
    src: str | Reference, dst: str | Reference | None = None, **kw: Any
) -> PushResult:
    """:func:`push_with_settings`, blocking (see :mod:`lorry.ops.blocking`)."""
    return run_blocking(partial(push_with_settings, src, dst, **kw))
