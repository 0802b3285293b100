"""The grammar of image references, as distribution/reference writes it, and its raw parser.

This private module holds the regular expressions (built from the same productions as
distribution/reference's ``regexp.go``, so its published regexp tables run against them), the
unnormalised parse (Go's ``reference.Parse``), digest validation (go-digest's rules, narrowed
to the algorithms lorry can verify) and Go's ``path.Match`` glob used by ``familiar_match``.
:mod:`lorry.reference` builds Docker's normalisation on top and is the public face.

Python's ``re`` differs from Go's regexp in three ways that matter here, each handled below:
``\\w`` is Unicode unless ``re.ASCII``; ``$`` also matches before a final newline, so anchors
are ``\\A``/``\\Z``; and a group that did not take part is ``None``, not ``""``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from lorry.errors import InvalidInputError, InvalidReference

#: Longest repository path (the part after the domain) distribution/reference accepts.
NAME_TOTAL_LENGTH_MAX = 255

# Productions, named as in distribution/reference's grammar.
_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_OPTIONAL_PORT = r"(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9A-Fa-f]{32,}"
_IDENTIFIER = r"([a-f0-9]{64})"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN_NAME = _DOMAIN_COMPONENT + r"(?:\." + _DOMAIN_COMPONENT + r")*"
_HOST = r"(?:" + _DOMAIN_NAME + "|" + _IPV6 + ")"
_DOMAIN_AND_PORT = _HOST + _OPTIONAL_PORT
PATH_COMPONENT = _ALPHANUMERIC + r"(?:" + _SEPARATOR + _ALPHANUMERIC + r")*"
_REMOTE_NAME = PATH_COMPONENT + r"(?:/" + PATH_COMPONENT + r")*"
_NAME = r"(?:" + _DOMAIN_AND_PORT + r"/)?" + _REMOTE_NAME


def _anchored(pattern: str) -> re.Pattern[str]:
    return re.compile(r"\A" + pattern + r"\Z", re.ASCII)


#: A domain: host name, IPv4 or bracketed IPv6 address, with an optional port (unanchored).
DOMAIN_RE = re.compile(_DOMAIN_AND_PORT, re.ASCII)
#: A repository name with optional domain, without tag or digest (unanchored).
NAME_RE = re.compile(_NAME, re.ASCII)
#: A tag (unanchored).
TAG_RE = re.compile(_TAG, re.ASCII)
#: A digest as the reference grammar accepts it, before go-digest's checks (unanchored).
DIGEST_RE = re.compile(_DIGEST, re.ASCII)
#: A 64-hex content identifier, a digest without its ``sha256:`` (unanchored).
IDENTIFIER_RE = re.compile(_IDENTIFIER, re.ASCII)
#: A whole reference; groups: name, tag, digest.
REFERENCE_RE = _anchored(r"(" + _NAME + r")(?::(" + _TAG + r"))?(?:@(" + _DIGEST + r"))?")
#: A whole name; groups: domain, path.
ANCHORED_NAME_RE = _anchored(r"(?:(" + _DOMAIN_AND_PORT + r")/)?(" + _REMOTE_NAME + r")")
#: A whole domain with optional port.
ANCHORED_DOMAIN_RE = _anchored(_DOMAIN_AND_PORT)
#: A whole tag.
ANCHORED_TAG_RE = _anchored(_TAG)
#: A whole digest, grammar only.
ANCHORED_DIGEST_RE = _anchored(_DIGEST)
#: A whole 64-hex identifier.
ANCHORED_IDENTIFIER_RE = _anchored(_IDENTIFIER)
#: A whole repository path (remote name).
ANCHORED_PATH_RE = _anchored(_REMOTE_NAME)

# go-digest's own looser digest shape, used only to choose between its two error messages.
_GO_DIGEST_RE = _anchored(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
# Algorithms go-digest accepts but lorry cannot verify: refused as unsupported, not misread.
_GO_ONLY_HEX_LENGTH = {"sha384": 96}
_LOWER_HEX_RE = _anchored(r"[a-f0-9]+")

# The rules, worded as distribution/reference and go-digest word their errors.
NAME_EMPTY = "repository name must have at least one component"
INVALID_FORMAT = "invalid reference format"
NAME_UPPERCASE = "repository name must be lowercase"
NAME_TOO_LONG = f"repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
NAME_NOT_CANONICAL = "repository name must be canonical"
TAG_INVALID = "invalid tag format"
DIGEST_INVALID = "invalid digest format"
CHECKSUM_FORMAT = "invalid checksum digest format"
CHECKSUM_LENGTH = "invalid checksum digest length"
DIGEST_UNSUPPORTED = "unsupported digest algorithm"
HEX_IDENTIFIER = "cannot specify 64-byte hexadecimal strings"


def invalid(text: str, rule: str) -> InvalidReference:
    """The error for ``text`` breaking ``rule``: ``invalid reference "text": rule``."""
    return InvalidReference(f'invalid reference "{text}": {rule}')


def digest_rule(digest: str) -> str | None:
    """The rule ``digest`` breaks, or None: the grammar, then go-digest's checks.

    Only sha256 and sha512 are accepted, the algorithms lorry can verify (go-digest also has
    sha384); anything else well formed is "unsupported digest algorithm", as in go-digest.
    """
    if not ANCHORED_DIGEST_RE.match(digest):
        return DIGEST_INVALID
    algorithm, _, encoded = digest.partition(":")
    want = _HEX_LENGTH.get(algorithm)
    if want is None:
        return DIGEST_UNSUPPORTED if _GO_DIGEST_RE.match(digest) else CHECKSUM_FORMAT
    if len(encoded) != want:
        return CHECKSUM_LENGTH
    return None if _LOWER_HEX_RE.match(encoded) else CHECKSUM_FORMAT


def is_go_only_digest(text: str) -> bool:
    """Whether go-digest would accept ``text`` as a digest of an algorithm lorry lacks."""
    algorithm, _, encoded = text.partition(":")
    want = _GO_ONLY_HEX_LENGTH.get(algorithm)
    return want == len(encoded) and _LOWER_HEX_RE.match(encoded) is not None


class Parts(NamedTuple):
    """An unnormalised reference as Go's ``reference.Parse`` splits it; domain may be empty."""

    domain: str
    path: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        name = f"{self.domain}/{self.path}" if self.domain else self.path
        tag = f":{self.tag}" if self.tag is not None else ""
        return name + tag + (f"@{self.digest}" if self.digest is not None else "")


def split_name(name: str, shown: str | None = None) -> tuple[str, str]:
    """Split a name without tag or digest into (domain, path) as written; domain may be ""."""
    match = ANCHORED_NAME_RE.match(name)
    if match is None:
        raise invalid(shown or name, INVALID_FORMAT)
    path = match.group(2)
    if len(path) > NAME_TOTAL_LENGTH_MAX:
        raise invalid(shown or name, NAME_TOO_LONG)
    return match.group(1) or "", path


def parse_parts(text: str, shown: str | None = None) -> Parts:
    """Parse ``text`` as Go's ``reference.Parse`` does: grammar only, no normalisation.

    ``shown`` is the text to name in errors when ``text`` was rewritten by normalisation.
    """
    shown = text if shown is None else shown
    if not text:
        raise invalid(shown, NAME_EMPTY)
    match = REFERENCE_RE.match(text)
    if match is None:
        lowered = text.lower()
        if lowered != text and REFERENCE_RE.match(lowered):
            raise invalid(shown, NAME_UPPERCASE)
        raise invalid(shown, INVALID_FORMAT)
    name, tag, digest = match.groups()
    domain, path = split_name(name, shown)
    if digest is not None and (rule := digest_rule(digest)) is not None:
        raise invalid(shown, rule)
    return Parts(domain, path, tag, digest)


def glob_match(pattern: str, name: str) -> bool:
    """Whether ``name`` matches shell ``pattern`` exactly as Go's ``path.Match`` decides.

    ``*`` matches a run of non-``/`` characters, ``?`` one non-``/`` character, ``[...]`` or
    ``[^...]`` one character of a class; ``\\`` escapes. Like Go, each chunk after a star takes
    its first fit (no backtracking), and a malformed pattern raises even when the match fails.
    """
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return "/" not in name  # a trailing star matches the rest unless it has a slash
        rest = _match_chunk(chunk, name)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star and (rest := _match_after_skip(chunk, name, last=not pattern)) is not None:
            name = rest
            continue
        while pattern:  # fail, but only after checking the remaining pattern is well formed
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "")
        return False
    return not name


def _match_after_skip(chunk: str, name: str, *, last: bool) -> str | None:
    """Match ``chunk`` after skipping 1, 2, … leading non-``/`` characters of ``name``."""
    for i in range(len(name)):
        if name[i] == "/":
            break
        rest = _match_chunk(chunk, name[i + 1 :])
        if rest is not None and not (last and rest):
            return rest
    return None


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    """Split off leading stars and the chunk up to the next star outside a class."""
    stripped = pattern.lstrip("*")
    star = len(stripped) != len(pattern)
    in_class = False
    i = 0
    while i < len(stripped):
        char = stripped[i]
        if char == "\\":
            i += 1 if i + 1 < len(stripped) else 0
        elif char in "[]":
            in_class = char == "["
        elif char == "*" and not in_class:
            break
        i += 1
    return star, stripped[:i], stripped[i:]


def _match_chunk(chunk: str, name: str) -> str | None:
    """Match a star-free chunk at the start of ``name``; return the rest, or None.

    After a mismatch the chunk is still parsed to the end, so a malformed one always raises.
    """
    failed = False
    i = 0
    while i < len(chunk):
        failed = failed or not name
        char = chunk[i]
        if char == "[":
            got = "" if failed else name[0]
            name = name if failed else name[1:]
            hit, i = _match_class(chunk, i + 1, got)
            failed = failed or not hit
            continue
        if char == "\\":
            i += 1
            if i == len(chunk):
                raise _bad_pattern(chunk)
        if not failed:
            failed = name[0] == "/" if char == "?" else chunk[i] != name[0]
            name = name[1:]
        i += 1
    return None if failed else name


def _match_class(chunk: str, i: int, got: str) -> tuple[bool, int]:
    """Whether ``got`` is in the class starting after ``[`` at ``i``; and the index after it."""
    negated = i < len(chunk) and chunk[i] == "^"
    i += negated
    hit = False
    ranges = 0
    while not (i < len(chunk) and chunk[i] == "]" and ranges):
        lo, i = _class_char(chunk, i)
        hi = lo
        if chunk[i] == "-":
            hi, i = _class_char(chunk, i + 1)
        hit = hit or (bool(got) and lo <= got <= hi)
        ranges += 1
    return hit != negated, i + 1


def _class_char(chunk: str, i: int) -> tuple[str, int]:
    """One possibly escaped class character at ``i``; the chunk must not end right after it."""
    if i >= len(chunk) or chunk[i] in "-]":
        raise _bad_pattern(chunk)
    if chunk[i] == "\\":
        i += 1
        if i >= len(chunk):
            raise _bad_pattern(chunk)
    if i + 1 >= len(chunk):
        raise _bad_pattern(chunk)
    return chunk[i], i + 1


def _bad_pattern(chunk: str) -> InvalidInputError:
    return InvalidInputError(f"syntax error in pattern at {chunk!r}")
