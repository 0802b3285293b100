"""Image references, parsed and normalised exactly as Docker does (distribution/reference).

A reference is ``[registry/]repository[:tag][@digest]``. People write short, *familiar*
forms; Docker turns them into one fully qualified form, and lorry must agree with it byte for
byte, or the same words would name different images. :func:`parse` is Go's
``ParseNormalizedNamed``, quirks included:

- The first ``/``-separated component is the registry only if it contains ``.`` or ``:``, is
  ``localhost``, or has an uppercase letter; otherwise the registry is ``docker.io``. So
  ``localhost:5000`` alone is the repository ``docker.io/library/localhost`` tagged ``5000``,
  while ``localhost/foo`` and ``Foo/bar`` keep their registries.
- ``index.docker.io`` becomes ``docker.io``; a one-component repository on ``docker.io`` gains
  ``library/`` (``ubuntu`` → ``docker.io/library/ubuntu``).
- Repository paths are lowercase and at most 255 characters; tags are ``[\\w][\\w.-]{0,127}``;
  digests are sha256 or sha512 in lowercase hex of the right length.
- A bare 64-hex string is refused: it looks like an image ID, not a name.
- ``parse`` adds no tag; :meth:`Reference.with_default_tag` adds ``latest`` (``TagNameOnly``).

The *familiar* form is the reverse: ``docker.io/`` and a sole ``library/`` are dropped
(``FamiliarString``), except that lorry keeps ``docker.io/`` where Docker's short form would
read back as another registry (``docker.io/a.b/app``, ``docker.io/localhost/app``). Every
:class:`Reference` is canonical: ``parse(str(r)) == r`` and ``parse(r.familiar) == r`` hold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lorry import _reference_grammar as g
from lorry._reference_grammar import (
    ANCHORED_DIGEST_RE,
    ANCHORED_DOMAIN_RE,
    ANCHORED_IDENTIFIER_RE,
    ANCHORED_NAME_RE,
    ANCHORED_PATH_RE,
    ANCHORED_TAG_RE,
    DIGEST_RE,
    DOMAIN_RE,
    IDENTIFIER_RE,
    NAME_RE,
    NAME_TOTAL_LENGTH_MAX,
    REFERENCE_RE,
    TAG_RE,
)
from lorry.digest import Digest
from lorry.errors import InvalidInputError, InvalidReference

__all__ = [
    "ANCHORED_DIGEST_RE",
    "ANCHORED_DOMAIN_RE",
    "ANCHORED_IDENTIFIER_RE",
    "ANCHORED_NAME_RE",
    "ANCHORED_PATH_RE",
    "ANCHORED_TAG_RE",
    "DEFAULT_REGISTRY",
    "DEFAULT_TAG",
    "DIGEST_RE",
    "DOMAIN_RE",
    "IDENTIFIER_RE",
    "LEGACY_DEFAULT_REGISTRY",
    "NAME_RE",
    "NAME_TOTAL_LENGTH_MAX",
    "OFFICIAL_REPO_PREFIX",
    "REFERENCE_RE",
    "TAG_RE",
    "Reference",
    "familiar_match",
    "parse",
    "parse_any",
    "parse_canonical",
    "parse_docker_ref",
    "parse_normalized",
    "split_hostname",
]

#: The registry of Docker Hub, as references name it (its API host is registry-1.docker.io).
DEFAULT_REGISTRY = "docker.io"
#: The old name of Docker Hub's registry, normalised to :data:`DEFAULT_REGISTRY`.
LEGACY_DEFAULT_REGISTRY = "index.docker.io"
#: The namespace of Docker Hub's official images, implied by one-component names.
OFFICIAL_REPO_PREFIX = "library/"
#: The tag :meth:`Reference.with_default_tag` adds.
DEFAULT_TAG = "latest"
_LOCALHOST = "localhost"


@dataclass(frozen=True, slots=True)
class Reference:
    """A fully qualified, canonical image reference: registry, repository, tag and/or digest.

    ``registry`` is empty only in one Docker quirk: a first component with a ``.`` that is no
    valid host name (``foo_bar.com/app``) is kept as part of the repository path.
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        # Refuse anything parse() would not give back unchanged, so the round trips always hold.
        text = str(self)
        if self.registry and not ANCHORED_DOMAIN_RE.match(self.registry):
            raise g.invalid(text, g.INVALID_FORMAT)
        if not ANCHORED_PATH_RE.match(self.repository):
            raise g.invalid(text, g.INVALID_FORMAT)
        if len(self.repository) > NAME_TOTAL_LENGTH_MAX:
            raise g.invalid(text, g.NAME_TOO_LONG)
        if self.tag is not None and not ANCHORED_TAG_RE.match(self.tag):
            raise g.invalid(text, g.TAG_INVALID)
        if self.digest is not None and (rule := g.digest_rule(self.digest)) is not None:
            raise g.invalid(text, rule)
        if _normalize(text) != (self.registry, self.repository, self.tag, self.digest):
            raise g.invalid(text, g.NAME_NOT_CANONICAL)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        return self.name + tag + (f"@{self.digest}" if self.digest is not None else "")

    @property
    def name(self) -> str:
        """The fully qualified name without tag or digest: ``docker.io/library/alpine``."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def domain(self) -> str:
        """Alias of :attr:`registry`, distribution/reference's word for it."""
        return self.registry

    @property
    def path(self) -> str:
        """Alias of :attr:`repository`, distribution/reference's word for it."""
        return self.repository

    @property
    def familiar_name(self) -> str:
        """The short name Docker shows: ``alpine``, ``user/app``, ``ghcr.io/o/app``."""
        if self.registry != DEFAULT_REGISTRY:
            return self.name
        rest = self.repository.removeprefix(OFFICIAL_REPO_PREFIX)
        if "/" not in rest:
            return rest
        # Docker would print "docker.io/a.b/app" as "a.b/app", which reads back as registry
        # a.b; lorry keeps the prefix whenever dropping it would change the meaning.
        if _split_docker_domain(self.repository) != (DEFAULT_REGISTRY, self.repository):
            return self.name
        return self.repository

    @property
    def familiar(self) -> str:
        """The short form of the whole reference, as Docker's ``FamiliarString``."""
        tag = f":{self.tag}" if self.tag is not None else ""
        return self.familiar_name + tag + (f"@{self.digest}" if self.digest is not None else "")

    @property
    def is_name_only(self) -> bool:
        """Whether the reference has neither tag nor digest."""
        return self.tag is None and self.digest is None

    def with_tag(self, tag: str) -> Reference:
        """This reference with ``tag`` (any digest kept, as Go's ``WithTag``)."""
        return dataclasses.replace(self, tag=tag)

    def with_digest(self, digest: str | Digest) -> Reference:
        """This reference with ``digest`` (any tag kept, as Go's ``WithDigest``)."""
        return dataclasses.replace(self, digest=str(digest))

    def with_default_tag(self) -> Reference:
        """This reference, tagged ``latest`` if it has neither tag nor digest (``TagNameOnly``)."""
        return self.with_tag(DEFAULT_TAG) if self.is_name_only else self

    def name_only(self) -> Reference:
        """This reference without tag or digest (Go's ``TrimNamed``)."""
        return dataclasses.replace(self, tag=None, digest=None)


def _split_docker_domain(text: str) -> tuple[str, str]:
    """Split a familiar reference into registry and the rest, as Docker's splitDockerDomain."""
    first, slash, rest = text.partition("/")
    if not slash:
        # One component ("ubuntu", "ubuntu:22.04", even "localhost:5000") is always on Hub.
        return DEFAULT_REGISTRY, OFFICIAL_REPO_PREFIX + text
    if first == LEGACY_DEFAULT_REGISTRY:
        domain = DEFAULT_REGISTRY
    elif first == _LOCALHOST or "." in first or ":" in first or first.lower() != first:
        domain = first
    else:
        domain, rest = DEFAULT_REGISTRY, text
    if domain == DEFAULT_REGISTRY and "/" not in rest:
        rest = OFFICIAL_REPO_PREFIX + rest
    return domain, rest


def _normalize(text: str) -> g.Parts:
    """Go's ``ParseNormalizedNamed``, returning the parts; errors name ``text``."""
    if ANCHORED_IDENTIFIER_RE.match(text):
        raise InvalidReference(
            f'invalid reference "{text}": invalid repository name, {g.HEX_IDENTIFIER}'
        )
    domain, rest = _split_docker_domain(text)
    remote = rest.partition(":")[0]
    if remote.lower() != remote:
        raise g.invalid(text, g.NAME_UPPERCASE)
    return g.parse_parts(f"{domain}/{rest}", shown=text)


def parse(text: str) -> Reference:
    """Parse a reference the way ``docker pull`` reads it; raise :class:`InvalidReference`.

    No tag is added: ``parse("alpine").tag is None``; see :meth:`Reference.with_default_tag`.
    """
    domain, path, tag, digest = _normalize(text)
    return Reference(domain, path, tag, digest)


#: Alias of :func:`parse`, named after Go's ``ParseNormalizedNamed``.
parse_normalized = parse


def parse_canonical(text: str) -> Reference:
    """Parse a reference that must already be fully qualified (Go's ``ParseNamed``)."""
    ref = parse(text)
    if str(ref) != text:
        raise g.invalid(text, g.NAME_NOT_CANONICAL)
    return ref


def parse_docker_ref(text: str) -> Reference:
    """Parse as Docker resolves a pull: digest wins over tag, else the tag defaults to latest."""
    ref = parse(text)
    if ref.tag is not None and ref.digest is not None:
        return dataclasses.replace(ref, tag=None)
    return ref.with_default_tag()


def parse_any(text: str) -> Reference | Digest:
    """Parse an image ID (64 hex), a digest, or a reference (Go's ``ParseAnyReference``)."""
    if ANCHORED_IDENTIFIER_RE.match(text):
        return Digest("sha256", text)
    if g.digest_rule(text) is None:
        return Digest.parse(text)
    if g.is_go_only_digest(text):  # Docker would take it as a digest; lorry cannot verify it
        raise g.invalid(text, g.DIGEST_UNSUPPORTED)
    return parse(text)


def split_hostname(name: str) -> tuple[str, str]:
    """Split a name (no tag, no digest) into domain and path as written, unnormalised.

    The domain is ``""`` when the first component is no domain (Go's ``WithName`` followed
    by ``Domain`` and ``Path``): ``split_hostname("test.com/foo") == ("test.com", "foo")``.
    """
    return g.split_name(name)


def familiar_match(pattern: str, ref: Reference) -> bool:
    """Whether ``pattern`` (Go ``path.Match`` syntax) matches the familiar string or name.

    Docker's ``FamiliarMatch``, used by reference filters such as ``images --filter``.
    """
    try:
        return g.glob_match(pattern, ref.familiar) or g.glob_match(pattern, ref.familiar_name)
    except InvalidInputError as exc:
        raise InvalidInputError(f"invalid reference pattern {pattern!r}: {exc}") from exc
