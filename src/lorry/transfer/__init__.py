"""The transfer layer: shared, deduplicated, limited, retried and cancellable transfers.

It knows nothing about registries (DESIGN.md §2, layer 5): pull, push and copy hand it keys,
descriptors and a layer store, and it schedules the work. Start with
:mod:`lorry.transfer.manager` for the rules, then :mod:`~lorry.transfer.download` and
:mod:`~lorry.transfer.upload`; :mod:`~lorry.transfer.protocols` is what callers implement.

Names load on first use (PEP 562), so a module that needs only :mod:`~lorry.transfer.statuses`
(store-only commands) does not pay for the manager and anyio.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lorry.transfer import statuses
    from lorry.transfer.clock import Clock, SystemClock
    from lorry.transfer.download import DownloadManager, LayerRelease
    from lorry.transfer.limits import DEFAULT_DOWNLOADS, DEFAULT_UPLOADS, Limits, default_cpu_limit
    from lorry.transfer.manager import Transfer, TransferContext, TransferManager, Watcher
    from lorry.transfer.protocols import (
        DownloadDescriptor,
        ExtractProgress,
        LayerLike,
        LayerStoreLike,
        TransferProgress,
        UploadDescriptor,
        blob_key,
        upload_key,
    )
    from lorry.transfer.retry import DEFAULT_ATTEMPTS, RetryPolicy
    from lorry.transfer.stall import DEFAULT_STALL_TIMEOUT, StallGuard
    from lorry.transfer.upload import UploadManager

#: Public names and the module each is loaded from when first used.
_LAZY = {
    "statuses": "",
    "Clock": "clock",
    "SystemClock": "clock",
    "DownloadManager": "download",
    "LayerRelease": "download",
    "DEFAULT_DOWNLOADS": "limits",
    "DEFAULT_UPLOADS": "limits",
    "Limits": "limits",
    "default_cpu_limit": "limits",
    "Transfer": "manager",
    "TransferContext": "manager",
    "TransferManager": "manager",
    "Watcher": "manager",
    "DownloadDescriptor": "protocols",
    "ExtractProgress": "protocols",
    "LayerLike": "protocols",
    "LayerStoreLike": "protocols",
    "TransferProgress": "protocols",
    "UploadDescriptor": "protocols",
    "blob_key": "protocols",
    "upload_key": "protocols",
    "DEFAULT_ATTEMPTS": "retry",
    "RetryPolicy": "retry",
    "DEFAULT_STALL_TIMEOUT": "stall",
    "StallGuard": "stall",
    "UploadManager": "upload",
}

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_DOWNLOADS",
    "DEFAULT_STALL_TIMEOUT",
    "DEFAULT_UPLOADS",
    "Clock",
    "DownloadDescriptor",
    "DownloadManager",
    "ExtractProgress",
    "LayerLike",
    "LayerRelease",
    "LayerStoreLike",
    "Limits",
    "RetryPolicy",
    "StallGuard",
    "SystemClock",
    "Transfer",
    "TransferContext",
    "TransferManager",
    "TransferProgress",
    "UploadDescriptor",
    "UploadManager",
    "Watcher",
    "blob_key",
    "default_cpu_limit",
    "statuses",
    "upload_key",
]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lorry.transfer' has no attribute {name!r}")
    if module == "":
        value: Any = importlib.import_module(f"{__name__}.{name}")
    else:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
