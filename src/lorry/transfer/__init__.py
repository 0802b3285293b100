"""The transfer layer: shared, deduplicated, limited, retried and cancellable transfers.

It knows nothing about registries (DESIGN.md §2, layer 5): pull, push and copy hand it keys,
descriptors and a layer store, and it schedules the work. Start with
:mod:`lorry.transfer.manager` for the rules, then :mod:`~lorry.transfer.download` and
:mod:`~lorry.transfer.upload`; :mod:`~lorry.transfer.protocols` is what callers implement.
"""

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
