"""Owner mapping for an unpack as root: ``--uid-map``/``--gid-map CONTAINER:HOST:SIZE`` as umoci.

A tree for a user namespace needs its owners shifted (container 0 is host 100000, …). An
empty map is the identity; with ranges, an ID outside every range refuses the layer, naming
the entry, rather than leaving a file owned by a host user the image never meant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lorry.errors import InvalidInputError

__all__ = ["IdMap", "IdRange", "parse_ranges"]


@dataclass(frozen=True)
class IdRange:
    """IDs ``container .. container+size-1`` become ``host .. host+size-1``."""

    container: int
    host: int
    size: int

    def get(self, n: int) -> int | None:
        """The host ID of container ID ``n``, or None when this range does not hold it."""
        return self.host + n - self.container if 0 <= n - self.container < self.size else None


@dataclass(frozen=True)
class IdMap:
    """User and group ranges; empty: owners as the layer says."""

    uids: tuple[IdRange, ...] = ()
    gids: tuple[IdRange, ...] = ()

    def uid(self, n: int, where: str) -> int:
        """The host UID for a layer's ``n``."""
        return _map(self.uids, n, where, "uid")

    def gid(self, n: int, where: str) -> int:
        """The host GID for a layer's ``n``."""
        return _map(self.gids, n, where, "gid")


def _map(ranges: tuple[IdRange, ...], n: int, where: str, kind: str) -> int:
    if not ranges:
        return n
    for r in ranges:
        got = r.get(n)
        if got is not None:
            return got
    raise InvalidInputError(f"{where}: {kind} {n} is outside --{kind}-map")


def parse_ranges(texts: Sequence[str], flag: str) -> tuple[IdRange, ...]:
    """``CONTAINER:HOST:SIZE`` values (``--uid-map``); bad or overlapping ones name the flag."""
    out: list[IdRange] = []
    for text in texts:
        parts = text.split(":")
        try:
            container, host, size = (int(p) for p in parts)
        except ValueError:
            raise InvalidInputError(f"{flag} {text!r}: want CONTAINER:HOST:SIZE") from None
        if len(parts) != 3 or min(container, host) < 0 or size < 1:
            raise InvalidInputError(f"{flag} {text!r}: want CONTAINER:HOST:SIZE, size >= 1")
        if container + size > 2**32 or host + size > 2**32:
            raise InvalidInputError(f"{flag} {text!r}: beyond the 32-bit ID space")
        new = IdRange(container, host, size)
        for old in out:
            if new.container < old.container + old.size and old.container < new.container + size:
                raise InvalidInputError(f"{flag} {text!r}: overlaps {old.container}:{old.host}")
        out.append(new)
    return tuple(out)
