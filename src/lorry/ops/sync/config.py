"""The sync file's schema as validated plain data (docs/sync.md is its reference).

:func:`load_config` reads a TOML or YAML file; :func:`config_from_data` checks parsed data; both
report every mistake at once, before any network call, as one :class:`SyncConfigError` whose
``problems`` each name the file, the line (YAML) and the key. :func:`one_off` builds the same
config from ``lorry sync --src … --dest …``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lorry._reference_grammar import ANCHORED_PATH_RE
from lorry.errors import InvalidInputError
from lorry.ops.sync.filters import NameFilter, TagFilter
from lorry.ops.sync.loader import Document, KeyPath, SyncConfigError, parse_text, read_document
from lorry.ops.sync.semver import parse_range
from lorry.platform import Platform
from lorry.reference import parse as parse_reference

__all__ = [
    "DestSpec",
    "RegistrySpec",
    "SourceSpec",
    "SyncConfig",
    "SyncConfigError",
    "config_from_data",
    "load_config",
    "load_config_text",
    "one_off",
]

_TOP_KEYS = (
    "sources",
    "destinations",
    "registries",
    "platforms",
    "referrers",
    "jobs",
    "transfers",
    "connections",
)
_SOURCE_KEYS = ("source", "tags", "repositories", "platforms", "referrers", "destinations")
_TAG_KEYS = ("names", "allow", "deny", "semver", "latest")
_REPO_KEYS = ("allow", "deny")
_REGISTRY_KEYS = (
    "mirrors",
    "insecure",
    "ca_file",
    "auth_file",
    "requests_per_second",
    "burst",
)
#: Images copied at once unless the file says otherwise.
DEFAULT_JOBS = 8
#: Blob moves at once, across every image, unless the file says otherwise.
DEFAULT_TRANSFERS = 8


@dataclass(frozen=True)
class DestSpec:
    """Where images go: a registry and repository prefix, or an OCI layout directory."""

    kind: Literal["docker", "oci"]
    text: str
    registry: str = ""
    prefix: str = ""
    path: Path | None = None


@dataclass(frozen=True)
class SourceSpec:
    """One source: a repository (or a registry's catalog) and how to choose from it."""

    registry: str
    #: None: every repository of the registry's catalog that ``repositories`` keeps.
    repository: str | None
    tags: TagFilter
    repositories: NameFilter
    #: None: every platform (an index is copied unchanged); else the subset to keep.
    platforms: tuple[Platform, ...] | None
    referrers: bool
    destinations: tuple[DestSpec, ...]
    text: str


@dataclass(frozen=True)
class RegistrySpec:
    """Per-registry options of the file: host settings, credentials and limits."""

    mirrors: tuple[str, ...] = ()
    #: None: docker's default (loopback hosts insecure); see RegistryConfig.insecure.
    insecure: bool | None = None
    ca_file: Path | None = None
    #: A docker-config-format file (``auths``, ``credHelpers``, ``credsStore``) tried first.
    auth_file: Path | None = None
    requests_per_second: float | None = None
    burst: int | None = None


@dataclass(frozen=True)
class SyncConfig:
    """A whole validated sync file."""

    sources: tuple[SourceSpec, ...]
    registries: Mapping[str, RegistrySpec] = field(default_factory=dict)
    jobs: int = DEFAULT_JOBS
    transfers: int = DEFAULT_TRANSFERS
    #: Connections open at once to one registry host (None: the session's default).
    connections: int | None = None
    file: str | None = None


def load_config(path: Path) -> SyncConfig:
    """Read and check a sync file (``.yaml``/``.yml``: YAML; anything else: TOML)."""
    doc = read_document(path)
    return config_from_data(doc, base=path.parent)


def load_config_text(text: str, file: str, *, yaml_syntax: bool, base: Path) -> SyncConfig:
    """Check a sync document given as text (tests, stdin)."""
    return config_from_data(parse_text(text, file, yaml_syntax=yaml_syntax), base=base)


def one_off(
    sources: Sequence[str],
    destinations: Sequence[str],
    *,
    tags: Sequence[str] = (),
    platforms: Sequence[str] = (),
    referrers: bool = True,
    jobs: int | None = None,
) -> SyncConfig:
    """The config ``lorry sync --src … --dest …`` describes (checked like a file)."""
    data: dict[str, Any] = {
        "sources": [{"source": s} for s in sources],
        "destinations": list(destinations),
        "referrers": referrers,
    }
    if tags:
        for src in data["sources"]:
            src["tags"] = list(tags)
    if platforms:
        data["platforms"] = list(platforms)
    if jobs is not None:
        data["jobs"] = jobs
    return config_from_data(Document(data, "command line"), base=Path.cwd())


def config_from_data(doc: Document, *, base: Path) -> SyncConfig:
    """Validate parsed data; SyncConfigError listing every problem."""
    c = _Checker(doc, base)
    top = c.table(doc.data, (), _TOP_KEYS)
    registries = c.registries(top.get("registries"), ("registries",))
    default_platforms = c.platforms(top.get("platforms"), ("platforms",))
    default_referrers = c.boolean(top.get("referrers", True), ("referrers",))
    jobs = c.integer(top.get("jobs", DEFAULT_JOBS), ("jobs",), low=1)
    transfers = c.integer(top.get("transfers", DEFAULT_TRANSFERS), ("transfers",), low=1)
    conns = top.get("connections")
    connections = c.integer(conns, ("connections",), low=1) if conns is not None else None
    dests = c.destinations(top.get("destinations"), ("destinations",), required=False)
    raw_sources = top.get("sources")
    sources: list[SourceSpec] = []
    if raw_sources is None:
        c.problem(("sources",), "missing: list at least one source")
    elif not isinstance(raw_sources, list) or not raw_sources:
        c.problem(("sources",), "must be a non-empty list of sources")
    else:
        for i, raw in enumerate(raw_sources):
            given = bool(dests) or "destinations" in top
            spec = c.source(
                raw,
                ("sources", i),
                dests,
                platforms=default_platforms,
                referrers=default_referrers,
                top_dests=given,
            )
            if spec is not None:
                sources.append(spec)
    if doc.problems:
        raise SyncConfigError(sorted(doc.problems, key=_line_of))
    return SyncConfig(tuple(sources), registries, jobs, transfers, connections, doc.file)


class _Checker:
    """Type and rule checks that record problems instead of stopping at the first."""

    def __init__(self, doc: Document, base: Path) -> None:
        self.doc = doc
        self.base = base

    def problem(self, path: KeyPath, message: str) -> None:
        self.doc.problems.append(f"{self.doc.where(path)}: {message}")

    def table(self, value: Any, path: KeyPath, keys: Sequence[str]) -> dict[str, Any]:
        if value is None and not path:
            self.problem(path, "the file is empty")
            return {}
        if not isinstance(value, dict):
            self.problem(path, "must be a table (mapping)")
            return {}
        for key in value:
            if key not in keys:
                self.problem((*path, str(key)), f"unknown key (known: {', '.join(keys)})")
        return value

    def boolean(self, value: Any, path: KeyPath) -> bool:
        if not isinstance(value, bool):
            self.problem(path, "must be true or false")
            return False
        return value

    def integer(self, value: Any, path: KeyPath, *, low: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            self.problem(path, f"must be an integer >= {low}")
            return low
        return value

    def number(self, value: Any, path: KeyPath) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            self.problem(path, "must be a number > 0")
            return None
        return float(value)

    def text(self, value: Any, path: KeyPath) -> str | None:
        """A string; a YAML scalar that became a number is taken as it was written."""
        if isinstance(value, str) and value:
            return value
        written = self.doc.texts.get(path)
        if isinstance(value, int | float) and not isinstance(value, bool) and written:
            return written
        self.problem(path, "must be a non-empty string")
        return None

    def texts(self, value: Any, path: KeyPath) -> list[str]:
        if isinstance(value, str) or not isinstance(value, list):
            self.problem(path, "must be a list of strings")
            return []
        out = [self.text(v, (*path, i)) for i, v in enumerate(value)]
        return [t for t in out if t is not None]

    def file(self, value: Any, path: KeyPath) -> Path | None:
        text = self.text(value, path)
        if text is None:
            return None
        p = Path(os.path.expanduser(text))
        p = p if p.is_absolute() else self.base / p
        if not p.is_file():
            self.problem(path, f"{p}: no such file")
        return p

    def regexes(self, value: Any, path: KeyPath) -> tuple[re.Pattern[str], ...]:
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        out: list[re.Pattern[str]] = []
        for i, pattern in enumerate(self.texts(items, path)):
            where = path if isinstance(value, str) else (*path, i)
            try:
                out.append(re.compile(pattern))
            except re.error as exc:
                self.problem(where, f"bad regex {pattern!r}: {exc}")
        return tuple(out)

    def names(self, value: Any, path: KeyPath) -> NameFilter:
        table = self.table(value, path, _REPO_KEYS) if value is not None else {}
        allow = self.regexes(table.get("allow"), (*path, "allow"))
        deny = self.regexes(table.get("deny"), (*path, "deny"))
        return NameFilter(allow, deny)

    def tags(self, value: Any, path: KeyPath) -> TagFilter:
        if value is None:
            return TagFilter()
        if isinstance(value, list):
            return TagFilter(names=tuple(self.texts(value, path)))
        table = self.table(value, path, _TAG_KEYS)
        names = table.get("names")
        semver = None
        if "semver" in table:
            text = self.text(table["semver"], (*path, "semver"))
            try:
                semver = parse_range(text) if text else None
            except InvalidInputError as exc:
                self.problem((*path, "semver"), str(exc))
        latest = table.get("latest")
        return TagFilter(
            names=tuple(self.texts(names, (*path, "names"))) if names is not None else None,
            regexes=NameFilter(
                self.regexes(table.get("allow"), (*path, "allow")),
                self.regexes(table.get("deny"), (*path, "deny")),
            ),
            semver=semver,
            latest=self.integer(latest, (*path, "latest"), low=1) if latest is not None else None,
        )

    def platforms(self, value: Any, path: KeyPath) -> tuple[Platform, ...] | None:
        """None for ``all`` (or nothing given); else the parsed subset."""
        if value is None or value == "all":
            return None
        out: list[Platform] = []
        for i, text in enumerate(self.texts(value, path)):
            try:
                out.append(Platform.parse(text))
            except InvalidInputError as exc:
                self.problem((*path, i), str(exc))
        return tuple(out)

    def destinations(self, value: Any, path: KeyPath, *, required: bool) -> tuple[DestSpec, ...]:
        if value is None:
            if required:
                self.problem(path, "missing: list at least one destination")
            return ()
        out = [_dest(t, self._at((*path, i))) for i, t in enumerate(self.texts(value, path))]
        if not out and isinstance(value, list):
            self.problem(path, "must list at least one destination")
        return tuple(d for d in out if d is not None)

    def _at(self, path: KeyPath) -> Callable[[str], None]:
        return lambda message: self.problem(path, message)

    def source(
        self,
        raw: Any,
        path: KeyPath,
        dests: tuple[DestSpec, ...],
        *,
        platforms: tuple[Platform, ...] | None,
        referrers: bool,
        top_dests: bool,
    ) -> SourceSpec | None:
        table = self.table(raw, path, _SOURCE_KEYS)
        if not table:
            return None
        text = self.text(table.get("source"), (*path, "source"))
        own = self.destinations(table.get("destinations"), (*path, "destinations"), required=False)
        if not (own or top_dests or "destinations" in table):
            self.problem((*path, "destinations"), "no destination: list one here or at the top")
        tags = self.tags(table.get("tags"), (*path, "tags"))
        repos = self.names(table.get("repositories"), (*path, "repositories"))
        chosen = self.platforms(table.get("platforms"), (*path, "platforms"))
        refs = self.boolean(table.get("referrers", referrers), (*path, "referrers"))
        if text is None:
            return None
        parsed = _source(text, self._at((*path, "source")))
        if parsed is None:
            return None
        registry, repository, tag = parsed
        if tag is not None:
            if "tags" in table:
                self.problem((*path, "tags"), f"{text} names a tag already; drop one of them")
            tags = TagFilter(names=(tag,))
        if repository is not None and "repositories" in table:
            self.problem((*path, "repositories"), "only for a whole registry (docker://HOST)")
        return SourceSpec(
            registry,
            repository,
            tags,
            repos,
            chosen if "platforms" in table else platforms,
            refs,
            own or dests,
            text,
        )

    def registries(self, value: Any, path: KeyPath) -> dict[str, RegistrySpec]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(path, "must be a table of registry hosts")
            return {}
        return {str(h): self.registry((*path, str(h)), v) for h, v in value.items()}

    def registry(self, path: KeyPath, value: Any) -> RegistrySpec:
        t = self.table(value, path, _REGISTRY_KEYS)
        rps, burst = t.get("requests_per_second"), t.get("burst")
        return RegistrySpec(
            mirrors=tuple(self.texts(t.get("mirrors", []), (*path, "mirrors"))),
            insecure=(
                self.boolean(t["insecure"], (*path, "insecure")) if "insecure" in t else None
            ),
            ca_file=self.file(t["ca_file"], (*path, "ca_file")) if "ca_file" in t else None,
            auth_file=self.file(t["auth_file"], (*path, "auth_file")) if "auth_file" in t else None,
            requests_per_second=(
                self.number(rps, (*path, "requests_per_second")) if rps is not None else None
            ),
            burst=self.integer(burst, (*path, "burst"), low=1) if burst is not None else None,
        )


def _line_of(problem: str) -> int:
    """The line a problem names (0 when none): problems are reported in file order."""
    m = re.match(r"[^:]*:(\d+): ", problem)
    return int(m.group(1)) if m else 0


def _looks_like_host(text: str) -> bool:
    return "/" not in text and ("." in text or ":" in text or text == "localhost")


def _source(text: str, problem: Callable[[str], None]) -> tuple[str, str | None, str | None] | None:
    """``(registry, repository or None for the catalog, tag or None)`` of ``docker://…``."""
    if not text.startswith("docker://"):
        problem(f"{text!r}: a source is docker://HOST[/REPOSITORY[:TAG]]")
        return None
    rest = text.removeprefix("docker://").rstrip("/")
    if _looks_like_host(rest):
        return rest.lower(), None, None
    try:
        ref = parse_reference(rest)
    except InvalidInputError as exc:
        problem(str(exc))
        return None
    if ref.digest is not None:
        problem(f"{text}: sync takes tags; name a tag or none (every tag), not a digest")
        return None
    return ref.registry, ref.repository, ref.tag


def _dest(text: str, problem: Callable[[str], None]) -> DestSpec | None:
    """A ``docker://HOST[/PREFIX]`` or ``oci:PATH`` destination, checked without the network."""
    if text.startswith("oci:"):
        path = Path(os.path.expanduser(text.removeprefix("oci:")))
        if not str(path) or ":" in str(path):
            problem(f"{text!r}: an OCI layout destination is oci:PATH (no :REF; sync names them)")
            return None
        existing = next((p for p in (path, *path.absolute().parents) if p.exists()), None)
        if existing is None or not existing.is_dir():
            problem(f"{text}: {existing or path} is not a directory")
            return None
        if not os.access(existing, os.W_OK):
            problem(f"{text}: {existing} is not writable")
            return None
        return DestSpec("oci", text, path=path)
    if not text.startswith("docker://"):
        problem(f"{text!r}: a destination is docker://HOST[/PREFIX] or oci:PATH")
        return None
    host, _, prefix = text.removeprefix("docker://").strip("/").partition("/")
    if not _looks_like_host(host):
        problem(f"{text!r}: a destination starts with a registry host (HOST[:PORT])")
        return None
    if prefix and not ANCHORED_PATH_RE.match(prefix):
        problem(
            f"{text!r}: the prefix {prefix!r} is not a repository path (lower case, a-z0-9._-/)"
        )
        return None
    if ":" in prefix or "@" in prefix:
        problem(f"{text!r}: a destination names no tag or digest")
        return None
    return DestSpec("docker", text, registry=host.lower(), prefix=prefix)
