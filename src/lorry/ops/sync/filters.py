"""Which tags and repositories of a source a sync takes: names, regexes, semver, latest N.

A :class:`TagFilter` applies its parts in a fixed order, each to what the one before kept:
the listed ``names`` (when given, the registry's list is not needed), ``allow`` regexes (a tag
is kept when one is found in it), ``deny`` regexes (dropped when one is found), the ``semver``
range, then the ``latest`` N by semver. Regexes are searched, as ``skopeo sync`` does: anchor
them with ``^…$`` to match whole tags. Referrer tags (``sha256-<hex>``, ``….sig``) are never
chosen by a filter: they come with the image they refer to (:func:`referrer_tags`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lorry.digest import Digest
from lorry.ops.sync.semver import Range, parse_version

__all__ = ["NameFilter", "TagFilter", "is_referrer_tag", "referrer_tags"]

#: The fallback tag schema of OCI 1.1 (``sha256-<hex>``) and cosign's ``sha256-<hex>.sig``.
_REFERRER_TAG = re.compile(r"^(?P<alg>sha256|sha512)-(?P<hex>[0-9a-f]{64,128})(?:\.[\w.-]+)?$")


def is_referrer_tag(tag: str) -> bool:
    """True for a tag of the fallback referrers schema or cosign's signature tags."""
    return _REFERRER_TAG.fullmatch(tag) is not None


def referrer_tags(tags: Iterable[str], subjects: Iterable[Digest]) -> list[str]:
    """The tags among ``tags`` that hold referrers of one of ``subjects``, in listing order."""
    wanted = {(d.algorithm, d.encoded) for d in subjects}
    out = []
    for tag in tags:
        m = _REFERRER_TAG.fullmatch(tag)
        if m is not None and (m.group("alg"), m.group("hex")) in wanted:
            out.append(tag)
    return out


@dataclass(frozen=True)
class NameFilter:
    """Regexes a name must contain one of (``allow``; none: any) and none of (``deny``)."""

    allow: tuple[re.Pattern[str], ...] = ()
    deny: tuple[re.Pattern[str], ...] = ()

    def keeps(self, name: str) -> bool:
        """True when ``name`` passes both lists."""
        if self.allow and not any(p.search(name) for p in self.allow):
            return False
        return not any(p.search(name) for p in self.deny)


@dataclass(frozen=True)
class TagFilter:
    """The tags to take from one repository (see the module docstring for the order)."""

    names: tuple[str, ...] | None = None
    regexes: NameFilter = NameFilter()
    semver: Range | None = None
    latest: int | None = None

    @property
    def needs_listing(self) -> bool:
        """True when the repository's tag list must be read (no fixed ``names``)."""
        return self.names is None

    def apply(self, listed: Sequence[str]) -> list[str]:
        """The chosen tags, in listing order (``latest``: newest first)."""
        tags = list(self.names) if self.names is not None else list(listed)
        tags = [t for t in tags if not is_referrer_tag(t) and self.regexes.keeps(t)]
        if self.semver is None and self.latest is None:
            return tags
        versions = [(parse_version(t), t) for t in tags]
        ranged = [
            (v, t)
            for v, t in versions
            if v is not None and v.release and (self.semver is None or self.semver.matches(v))
        ]
        if self.latest is None:
            return [t for _, t in ranged]
        ranked = sorted(ranged, key=lambda vt: (vt[0], vt[1]), reverse=True)
        return [t for _, t in ranked[: self.latest]]
