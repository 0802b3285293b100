"""lorry moves container images between OCI / Docker registries and local storage.

``lorry.pull``, ``lorry.push`` and ``lorry.copy`` (async) and their ``*_sync`` twins are the
library's front door, with their options and result types (see :mod:`lorry.api`). They are
loaded on first use, so ``import lorry`` stays light and the command line starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lorry._version import __version__

if TYPE_CHECKING:
    from lorry.api import (
        CopyOptions,
        CopyResult,
        PullOptions,
        PullResult,
        PushOptions,
        PushResult,
        copy,
        copy_sync,
        pull,
        pull_sync,
        push,
        push_sync,
    )
    from lorry.settings import Settings
    from lorry.store import Store

#: Public names and the module each is loaded from when first used.
_LAZY = {
    **dict.fromkeys(
        [
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
        ],
        "lorry.api",
    ),
    "Settings": "lorry.settings",
    "Store": "lorry.store",
}

__all__ = [
    "CopyOptions",
    "CopyResult",
    "PullOptions",
    "PullResult",
    "PushOptions",
    "PushResult",
    "Settings",
    "Store",
    "__version__",
    "copy",
    "copy_sync",
    "pull",
    "pull_sync",
    "push",
    "push_sync",
]


def __getattr__(name: str) -> Any:
    """Load a public name's module on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lorry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
