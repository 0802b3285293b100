"""Concurrency limits: network downloads, network uploads and CPU-heavy work, kept apart.

Each kind has its own limit because they compete for different things: downloads and uploads
for the link (users on slow uplinks asked for fewer parallel uploads, xfer-spec §7.4), while
decompression and layer registration compete for cores. A process sets them once on its
managers (and may change them at run time); one operation may pass tighter ones of its own.
``0`` means unlimited for the network limits; negative values are rejected (xfer-spec §7.5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from lorry.errors import InvalidInputError

__all__ = [
    "DEFAULT_DOWNLOADS",
    "DEFAULT_UPLOADS",
    "Limits",
    "check_limit",
    "default_cpu_limit",
]

#: Default concurrent network downloads (moby's ``max-concurrent-downloads``).
DEFAULT_DOWNLOADS = 3
#: Default concurrent network uploads (moby's ``max-concurrent-uploads``).
DEFAULT_UPLOADS = 5


def default_cpu_limit() -> int:
    """Default number of concurrent CPU-heavy jobs: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def check_limit(name: str, value: int, *, allow_unlimited: bool = True) -> int:
    """Validate one limit: an int ≥ 0 (≥ 1 when 0-for-unlimited is not allowed)."""
    low = 0 if allow_unlimited else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        hint = " (0 means unlimited)" if allow_unlimited else ""
        raise InvalidInputError(
            f"invalid {name} limit {value!r}: must be an integer >= {low}{hint}"
        )
    return value


@dataclass(frozen=True)
class Limits:
    """The three concurrency limits; ``downloads``/``uploads`` of 0 mean unlimited."""

    downloads: int = DEFAULT_DOWNLOADS
    uploads: int = DEFAULT_UPLOADS
    cpu: int = field(default_factory=default_cpu_limit)

    def __post_init__(self) -> None:
        check_limit("download concurrency", self.downloads)
        check_limit("upload concurrency", self.uploads)
        check_limit("CPU concurrency", self.cpu, allow_unlimited=False)
