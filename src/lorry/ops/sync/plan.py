"""From sources to images: catalogs and tag lists read, filters applied, shards taken.

An :class:`Item` is one tag of one source repository. Which items a run takes depends only on
the registries' listings and the config, never on timing, so every shard of ``--shard I/N``
computes the same list and keeps the items whose :func:`shard_of` is ``I``: the key is the
source registry, repository and tag, hashed with SHA-256, so N workers share nothing but the
registries and together take every item exactly once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from lorry.errors import InvalidInputError
from lorry.ops.sync.config import SourceSpec
from lorry.registry.client import RegistryClient, RegistrySession

__all__ = ["Item", "Shard", "list_repositories", "list_tags", "shard_of"]


@dataclass(frozen=True)
class Shard:
    """Worker ``index`` of ``count`` (0-based), from ``--shard I/N``."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/5"`` → Shard(2, 5); InvalidInputError naming the value otherwise."""
        first, slash, second = text.partition("/")
        if not (slash and first.strip().isdigit() and second.strip().isdigit()):
            raise InvalidInputError(f"--shard {text!r}: write it as I/N, e.g. 0/3")
        index, count = int(first), int(second)
        if count < 1 or index >= count:
            raise InvalidInputError(f"--shard {text!r}: need N >= 1 and 0 <= I < N")
        return cls(index, count)

    def takes(self, item: Item) -> bool:
        """True when ``item`` belongs to this shard."""
        return shard_of(item.key, self.count) == self.index


def shard_of(key: str, count: int) -> int:
    """The shard of a key: a stable hash (the same in every process and release) modulo N."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % count


@dataclass(frozen=True)
class Item:
    """One tag of one source repository, with the repository's tag list when it was read."""

    source: SourceSpec
    repository: str
    tag: str
    listed: tuple[str, ...] | None = None

    @property
    def registry(self) -> str:
        """The source registry."""
        return self.source.registry

    @property
    def key(self) -> str:
        """``registry/repository:tag`` (``@digest`` for a referrer): what shards hash and the
        report names."""
        at = "@" if ":" in self.tag else ":"
        return f"{self.source.registry}/{self.repository}{at}{self.tag}"


def list_repositories(session: RegistrySession, spec: SourceSpec) -> list[str]:
    """The source's repositories: its own, or those of the catalog its filter keeps."""
    if spec.repository is not None:
        return [spec.repository]
    return [r for r in session.catalog(spec.registry) if spec.repositories.keeps(r)]


def list_tags(client: RegistryClient, spec: SourceSpec) -> list[Item]:
    """The items of one repository; its tag list is read when filters or referrers need it."""
    listed: tuple[str, ...] | None = None
    if spec.tags.needs_listing or spec.referrers:
        listed = tuple(client.list_tags())
    chosen = spec.tags.apply(listed or ())
    return [Item(spec, client.repository, tag, listed) for tag in chosen]
