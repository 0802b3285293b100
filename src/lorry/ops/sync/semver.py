"""Semantic versions in tags, and the ranges sync filters them by (``>=1.4 <2``, ``^1.2``).

Tags are lenient versions: an optional ``v``, one to three numbers (missing ones count as 0),
an optional ``-prerelease`` and ``+build``. A range is comparators joined by spaces or commas
(all must hold), alternatives joined by ``||``; a comparator is ``>=``, ``>``, ``<=``, ``<``,
``=`` or ``!=`` and a version, ``^V`` (same major; same minor below 1.0), ``~V`` (same minor;
same major when only the major is given), or a bare partial version or x-range (``1.2``,
``1.x``, ``*``: every version with that prefix). As with npm, a prerelease tag matches no range
and is never among the ``latest`` (ask for such tags with a regex).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from lorry.errors import InvalidInputError

__all__ = ["Range", "Version", "parse_range", "parse_version"]

_VERSION = re.compile(
    r"^v?(?P<nums>\d+(?:\.\d+){0,2})(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_PARTIAL = re.compile(r"^v?(?P<nums>(?:\d+|[xX*])(?:\.(?:\d+|[xX*])){0,2})$")
_OPS = (">=", "<=", "!=", ">", "<", "=", "^", "~")


@dataclass(frozen=True, order=True)
class Version:
    """A parsed version; ordering is semver's (a prerelease sorts before its release)."""

    major: int
    minor: int
    patch: int
    #: 1 for a release, 0 for a prerelease (so a release sorts after its prereleases).
    release: int
    pre: tuple[tuple[int, int | str], ...]
    #: How many numbers the tag wrote (``1.2`` → 2): ties ``1.2`` < ``1.2.0`` deterministically.
    parts: int

    @property
    def core(self) -> tuple[int, int, int]:
        """``(major, minor, patch)``."""
        return (self.major, self.minor, self.patch)


def parse_version(text: str) -> Version | None:
    """The version a tag spells, or None when it is not one."""
    m = _VERSION.fullmatch(text)
    if m is None:
        return None
    nums = [int(n) for n in m.group("nums").split(".")]
    pre = m.group("pre")
    idents: tuple[tuple[int, int | str], ...] = ()
    if pre:
        # numeric identifiers sort before alphanumeric ones (semver §11)
        idents = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    padded = [*nums, 0, 0][:3]
    return Version(padded[0], padded[1], padded[2], 0 if pre else 1, idents, len(nums))


Check = Callable[[Version], bool]


@dataclass(frozen=True)
class Range:
    """A parsed range: ``text`` as written and the alternatives (each a list of checks)."""

    text: str
    alternatives: tuple[tuple[Check, ...], ...] = field(compare=False)

    def matches(self, version: Version) -> bool:
        """True when ``version`` is a release that satisfies one alternative completely."""
        if not version.release:
            return False
        return any(all(check(version) for check in alt) for alt in self.alternatives)


def parse_range(text: str) -> Range:
    """Parse a range; InvalidInputError naming the part that is not a comparator."""
    alternatives: list[tuple[Check, ...]] = []
    for alt in text.split("||"):
        words = _words(alt)
        if not words:
            raise InvalidInputError(f"semver range {text!r}: an empty alternative")
        checks: list[Check] = []
        for word in words:
            checks.extend(_comparator(word, text))
        alternatives.append(tuple(checks))
    return Range(text, tuple(alternatives))


def _words(alt: str) -> list[str]:
    """Comparators of one alternative; an operator separated from its version is joined."""
    raw = alt.replace(",", " ").split()
    out: list[str] = []
    for word in raw:
        if out and out[-1] in _OPS:
            out[-1] += word
        else:
            out.append(word)
    return out


def _comparator(word: str, text: str) -> list[Check]:
    op = next((o for o in _OPS if word.startswith(o)), "")
    rest = word[len(op) :]
    m = _PARTIAL.fullmatch(rest)
    full = _VERSION.fullmatch(rest)
    if full is not None and full.group("pre"):
        raise InvalidInputError(
            f"semver range {text!r}: {word!r}: prerelease versions cannot be used in a range"
        )
    if m is None:
        raise InvalidInputError(f"semver range {text!r}: {word!r} is not a version comparator")
    fields = m.group("nums").split(".")
    nums: list[int] = []
    for f in fields:
        if not f.isdigit():
            break
        nums.append(int(f))
    wild = len(nums) < len(fields) or len(nums) < 3
    if op in ("", "=") and wild:
        return [_prefix(nums)]
    if op == "^":
        return _caret(nums)
    if op == "~":
        return _tilde(nums)
    low = (*nums, 0, 0)[:3]
    return [_compare(op or "=", (low[0], low[1], low[2]))]


def _prefix(nums: list[int]) -> Check:
    n = len(nums)
    return lambda v: list(v.core[:n]) == nums


def _compare(op: str, bound: tuple[int, int, int]) -> Check:
    match op:
        case ">=":
            return lambda v: v.core >= bound
        case ">":
            return lambda v: v.core > bound
        case "<=":
            return lambda v: v.core <= bound
        case "<":
            return lambda v: v.core < bound
        case "!=":
            return lambda v: v.core != bound
    return lambda v: v.core == bound


def _caret(nums: list[int]) -> list[Check]:
    """``^1.2.3`` := >=1.2.3 <2; ``^0.2.3`` := >=0.2.3 <0.3; ``^0.0.3`` := >=0.0.3 <0.0.4."""
    low = (*nums, 0, 0)[:3]
    lower = _compare(">=", (low[0], low[1], low[2]))
    if nums[0] != 0 or len(nums) == 1:
        return [lower, _compare("<", (nums[0] + 1, 0, 0))]
    if nums[1] != 0 or len(nums) == 2:
        return [lower, _compare("<", (0, nums[1] + 1, 0))]
    return [lower, _compare("<", (0, 0, nums[2] + 1))]


def _tilde(nums: list[int]) -> list[Check]:
    """``~1.2.3`` := >=1.2.3 <1.3; ``~1`` := >=1 <2."""
    low = (*nums, 0, 0)[:3]
    lower = _compare(">=", (low[0], low[1], low[2]))
    if len(nums) == 1:
        return [lower, _compare("<", (nums[0] + 1, 0, 0))]
    return [lower, _compare("<", (nums[0], nums[1] + 1, 0))]
