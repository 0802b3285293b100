"""Parsing ``WWW-Authenticate`` headers as RFC 7235 defines them.

A header may hold several challenges (``Basic realm="x", Bearer realm="y",scope="a b"``);
parameter values may be tokens or quoted strings with backslash escapes, and a quoted ``scope``
may itself contain commas (``repository:a:pull,push``). Splitting on commas, as many clients do,
gets all of these wrong, so this module tokenises the header properly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Challenge", "parse_challenges"]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_TOKEN68 = r"[A-Za-z0-9\-._~+/]+=*"
_SCHEME_RE = re.compile(rf"\s*({_TOKEN})")
_PARAM_RE = re.compile(rf"\s*({_TOKEN})\s*=\s*")
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')
_TOKEN_VALUE_RE = re.compile(_TOKEN)
_TOKEN68_RE = re.compile(rf"\s*({_TOKEN68})\s*(?:,|$)")


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a scheme (lower-cased) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        """The ``realm`` parameter (the token endpoint for Bearer)."""
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        """The ``service`` parameter of a Bearer challenge."""
        return self.params.get("service")

    @property
    def scopes(self) -> tuple[str, ...]:
        """The space-separated ``scope`` parameter, split into scopes."""
        return tuple(self.params.get("scope", "").split())

    @property
    def error(self) -> str | None:
        """The ``error`` parameter, e.g. ``insufficient_scope`` or ``invalid_token``."""
        return self.params.get("error")


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """Every challenge in the given ``WWW-Authenticate`` header values, in order.

    Malformed trailing text is ignored rather than rejected: a registry that sends a slightly
    wrong header should still be usable when the challenge it meant is recognisable.
    """
    out: list[Challenge] = []
    for header in headers:
        out.extend(_parse_one(header))
    return out


def _parse_one(text: str) -> list[Challenge]:
    """The challenges of one header value."""
    out: list[Challenge] = []
    pos = 0
    while pos < len(text):
        pos = _skip_commas(text, pos)
        m = _SCHEME_RE.match(text, pos)
        if not m:
            break
        scheme, pos = m.group(1).lower(), m.end()
        params: dict[str, str] = {}
        t68 = _TOKEN68_RE.match(text, pos)
        pm = _PARAM_RE.match(text, pos)
        if t68 and (not pm or text[pm.end() : pm.end() + 1] in ("", "=", ",")):
            params[""] = t68.group(1)
            pos = t68.end()
        else:
            pos = _parse_params(text, pos, params)
        out.append(Challenge(scheme, params))
    return out


def _parse_params(text: str, pos: int, params: dict[str, str]) -> int:
    """Read ``name=value`` pairs into ``params``; return where the next challenge starts."""
    while pos < len(text):
        start = _skip_commas(text, pos)
        m = _PARAM_RE.match(text, start)
        if not m:
            return start
        name, pos = m.group(1).lower(), m.end()
        if pos < len(text) and text[pos] == '"':
            q = _QUOTED_RE.match(text, pos)
            if not q:
                params[name] = text[pos + 1 :]
                return len(text)
            params[name] = re.sub(r"\\(.)", r"\1", q.group(1))
            pos = q.end()
        else:
            v = _TOKEN_VALUE_RE.match(text, pos)
            params[name] = v.group(0) if v else ""
            pos = v.end() if v else pos
        while pos < len(text) and text[pos] == " ":
            pos += 1
        if pos < len(text) and text[pos] != ",":
            return pos
    return pos


def _skip_commas(text: str, pos: int) -> int:
    """Skip whitespace and empty list elements."""
    while pos < len(text) and text[pos] in " \t,":
        pos += 1
    return pos
