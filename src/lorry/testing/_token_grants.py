"""Which of the requested scopes an account gets: the token issuer's rule table.

A scope is ``type:name:actions`` (``repository:app/web:pull,push``); the name may itself hold
colons, so type is cut at the first colon and actions at the last. A rule pattern is a glob on
repository names (``"repo/*"``) or ``"type:glob"`` for other resource types; its actions are a
list where ``"*"`` allows every action. The granted actions of a scope are the requested ones
the matching rules allow, in the requested order; a scope with none left is dropped, not
refused (that is how real issuers behave, and what makes ``insufficient_scope`` testable).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["Grants", "granted_scopes", "parse_scope", "scope_access"]

#: Rules of one account: pattern → allowed actions.
Grants = Mapping[str, Sequence[str]]


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """Split ``type:name:a,b`` into (type, name, actions); None when malformed."""
    kind, sep, rest = scope.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not (sep and sep2 and kind and name):
        return None
    return kind, name, [a for a in actions.split(",") if a]


def _allowed(kind: str, name: str, grants: Grants) -> set[str]:
    allowed: set[str] = set()
    for pattern, actions in grants.items():
        rule_kind, sep, glob = pattern.partition(":")
        if not sep:
            rule_kind, glob = "repository", pattern
        if rule_kind == kind and fnmatch.fnmatchcase(name, glob):
            allowed.update(actions)
    return allowed


def granted_scopes(requested: Sequence[str], grants: Grants) -> list[str]:
    """The requested scopes cut down to what ``grants`` allow; empty ones dropped."""
    out: list[str] = []
    for scope in requested:
        parsed = parse_scope(scope)
        if parsed is None:
            continue
        kind, name, actions = parsed
        allowed = _allowed(kind, name, grants)
        kept = [a for a in actions if a in allowed or "*" in allowed]
        if kept:
            out.append(f"{kind}:{name}:{','.join(kept)}")
    return out


def scope_access(scopes: Sequence[str]) -> list[dict[str, Any]]:
    """The JWT ``access`` claim for granted scopes."""
    access: list[dict[str, Any]] = []
    for scope in scopes:
        parsed = parse_scope(scope)
        if parsed is not None:
            kind, name, actions = parsed
            access.append({"type": kind, "name": name, "actions": actions})
    return access
