"""User settings: store root, concurrency, retries, stall timeout and per-registry options.

Settings come from three places, each overriding the one before (see ``docs/config.md``):

1. ``lorry.toml`` — the file named by ``$LORRY_CONFIG``, else ``lorry.toml`` in the user config
   directory (XDG on Linux, :mod:`lorry.userdirs`; a missing default file means all defaults);
2. ``LORRY_*`` environment variables;
3. command-line flags, through :meth:`Settings.with_overrides`.

This module only reads and validates plain data; ``lorry.ops.settings_bridge`` turns it into the
registry, transfer and session objects. Every mistake is an :class:`InvalidInputError` of one
line naming where the value came from (the file or variable), the key and the rule it breaks.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from lorry.errors import InvalidInputError
from lorry.userdirs import user_config_dir

__all__ = [
    "CONFIG_ENV",
    "ENV_VARIABLES",
    "RegistrySettings",
    "Settings",
    "default_config_path",
    "load",
]

#: The environment variable naming the configuration file to read.
CONFIG_ENV = "LORRY_CONFIG"
#: Environment variables that override the file, by the setting they set.
ENV_VARIABLES: Mapping[str, str] = MappingProxyType(
    {
        "LORRY_ROOT": "root",
        "LORRY_MAX_CONCURRENT_DOWNLOADS": "max_concurrent_downloads",
        "LORRY_MAX_CONCURRENT_UPLOADS": "max_concurrent_uploads",
        "LORRY_MAX_ATTEMPTS": "max_attempts",
        "LORRY_STALL_TIMEOUT": "stall_timeout",
        "LORRY_VERIFY_DIFFIDS": "verify_diffids",
        "LORRY_INSECURE_REGISTRIES": "insecure_registries",
    }
)
_REGISTRY_KEYS = ("mirrors", "insecure", "ca_file")


@dataclass(frozen=True)
class RegistrySettings:
    """What the user configured for one registry host: mirrors, plain HTTP, extra CA bundle."""

    #: Mirror base URLs (``http://`` or ``https://``), tried in order before the registry.
    mirrors: tuple[str, ...] = ()
    #: True: unverified TLS, then plain HTTP, allowed; False: verified HTTPS only (loopback
    #: too); None: the default (loopback hosts are insecure, as docker has them).
    insecure: bool | None = None
    #: A PEM CA bundle trusted for this host in addition to the system store.
    ca_file: Path | None = None


def _no_registries() -> Mapping[str, RegistrySettings]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Settings:
    """Every user-configurable default, as plain validated data."""

    #: Store root directory (None: the platform's user data directory).
    root: Path | None = None
    #: Layers downloaded at once (0: unlimited).
    max_concurrent_downloads: int = 3
    #: Layers uploaded at once (0: unlimited).
    max_concurrent_uploads: int = 5
    #: CPU-heavy jobs (decompression, registration) at once (None: the CPUs available).
    cpu: int | None = None
    #: Total attempts per layer transfer, the first included (at least 1).
    max_attempts: int = 5
    #: Seconds without progress before an attempt counts as stalled (0: never).
    stall_timeout: float = 30.0
    #: Inflate every layer at pull time and check its DiffID there (default: check it where
    #: the layer is inflated anyway: unpack, ``lorry verify``, ``fsck --deep``).
    verify_diffids: bool = False
    #: Per-registry options by ``host[:port]``, lower-cased.
    registries: Mapping[str, RegistrySettings] = field(default_factory=_no_registries)
    #: The forward proxy for HTTP and HTTPS (``http://[user:pass@]host:port``), used instead
    #: of ``HTTPS_PROXY``/``HTTP_PROXY``; ``NO_PROXY`` still applies.
    proxy: str | None = None
    #: False (``--tls-verify=false``): no registry's certificate is checked, and plain HTTP
    #: is allowed after HTTPS fails, as for an insecure registry.
    tls_verify: bool = True
    #: ``--cert-dir``: a directory of ``*.crt`` CAs and ``*.cert``/``*.key`` client pairs used
    #: for every registry instead of certs.d.
    cert_dir: Path | None = None
    #: The configuration file these settings were read from (None: none was read).
    source: Path | None = None

    def registry(self, host: str) -> RegistrySettings:
        """The options of ``host`` (defaults when it has none)."""
        return self.registries.get(host.lower(), RegistrySettings())

    def with_overrides(self, **flags: Any) -> Settings:
        """These settings with command-line values applied; a flag given as None is not set.

        Takes the field names (``root``, ``max_concurrent_downloads``, ...) and
        ``insecure_registries``, an iterable of hosts to mark insecure.
        """
        return _apply(self, {k: v for k, v in flags.items() if v is not None}, "command line")


def default_config_path() -> Path:
    """``lorry.toml`` in the user config directory."""
    return user_config_dir("lorry") / "lorry.toml"


def load(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read ``path`` (else ``$LORRY_CONFIG``, else the default file), then ``LORRY_*`` variables.

    ``env`` defaults to ``os.environ``. A file named by ``path`` or ``$LORRY_CONFIG`` must
    exist; the default file may be missing (then the defaults apply).
    """
    env = os.environ if env is None else env
    explicit = path
    if explicit is None and env.get(CONFIG_ENV):
        explicit = Path(env[CONFIG_ENV]).expanduser()
    file = explicit if explicit is not None else default_config_path()
    settings = Settings()
    data = _read_toml(file, required=explicit is not None)
    if data is not None:
        settings = _apply(settings, _from_file(data, file), str(file), base=file.parent)
        settings = replace(settings, source=file)
    return _apply(settings, _from_env(env), "environment")


def _read_toml(file: Path, *, required: bool) -> dict[str, Any] | None:
    """The parsed file, or None when an optional file does not exist."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        if required:
            raise InvalidInputError(f"{file}: configuration file not found") from None
        return None
    except OSError as exc:
        raise InvalidInputError(f"{file}: cannot read: {exc.strerror or exc}") from None
    import tomllib  # here, not at import: most runs have no file (start-up time)

    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{file}: invalid TOML: not UTF-8 ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{file}: invalid TOML: {exc}") from None


def _from_file(data: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """The file's top-level keys, checked against the known ones."""
    known = {f for f in Settings.__dataclass_fields__ if f != "source"}
    for key in data:
        if key not in known:
            raise InvalidInputError(
                f"{file}: {key}: unknown key (known: {', '.join(sorted(known))})"
            )
    return dict(data)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The overrides the ``LORRY_*`` variables carry (empty variables are ignored)."""
    out: dict[str, Any] = {}
    for var, name in ENV_VARIABLES.items():
        text = env.get(var, "").strip()
        if not text:
            continue
        if name == "root":
            out[name] = text
        elif name == "insecure_registries":
            out[name] = [h.strip() for h in text.split(",") if h.strip()]
        elif name == "verify_diffids":
            out[name] = _env_bool(text, var)
        else:
            out[name] = _number(text, name, var)
    return out


def _number(text: str, name: str, var: str) -> int | float:
    """An environment variable's number (an int, or a float for the stall timeout)."""
    try:
        return float(text) if name == "stall_timeout" else int(text)
    except ValueError:
        kind = "a number" if name == "stall_timeout" else "an integer"
        raise InvalidInputError(f"{var}: must be {kind}, got {text!r}") from None


def _env_bool(text: str, var: str) -> bool:
    """A yes/no environment variable."""
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidInputError(f"{var}: must be true or false, got {text!r}")


def _bool(value: Any, what: str, base: Path | None) -> bool:
    """A TOML boolean."""
    if not isinstance(value, bool):
        raise InvalidInputError(f"{what}: must be true or false, got {value!r}")
    return value


def _apply(
    settings: Settings, values: Mapping[str, Any], where: str, *, base: Path | None = None
) -> Settings:
    """``settings`` with ``values`` validated and set; errors say ``where: key: rule``."""
    changes: dict[str, Any] = {}
    registries = dict(settings.registries)
    for key, value in values.items():
        if key == "registries":
            registries.update(_registries(value, where, base))
        elif key == "insecure_registries":
            for host in _hosts(value, where):
                registries[host] = replace(registries.get(host, RegistrySettings()), insecure=True)
        elif key in _CHECKS:
            changes[key] = _CHECKS[key](value, _label(where, key), base)
        else:
            raise InvalidInputError(f"{where}: {key}: unknown setting")
    return replace(settings, **changes, registries=MappingProxyType(registries))


def _label(where: str, key: str) -> str:
    """Where a value was written: ``file: key``, the variable's name, or the flag."""
    if where == "environment":
        return next(var for var, name in ENV_VARIABLES.items() if name == key)
    if where == "command line":
        flag = "insecure-registry" if key == "insecure_registries" else key.replace("_", "-")
        return f"--{flag}"
    return f"{where}: {key}"


def _path(value: Any, what: str, base: Path | None) -> Path:
    """A path (``~`` expanded; relative to the config file's directory when from a file)."""
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise InvalidInputError(f"{what}: must be a non-empty path string, got {value!r}")
    path = Path(value).expanduser()
    return base / path if base is not None and not path.is_absolute() else path


def _proxy(value: Any, what: str, base: Path | None) -> str:
    """A forward proxy URL: ``http://[user:pass@]host[:port]`` (a bare ``host:port`` too)."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        parts = urlsplit(text if "://" in text else f"http://{text}")
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "http" or not parts.hostname:
        shown = "a string" if not isinstance(value, str) else "an http://host:port URL"
        raise InvalidInputError(f"{what}: must be {shown}, got {_masked(value)!r}")
    return text


def _masked(value: Any) -> Any:
    """``value`` with a password in a URL replaced by ``***`` (errors never show secrets)."""
    if not isinstance(value, str) or "@" not in value:
        return value
    head, _, tail = value.rpartition("@")
    scheme, sep, userinfo = head.rpartition("://")
    user = userinfo.partition(":")[0]
    return f"{scheme}{sep}{user}:***@{tail}"


def _int(low: int) -> Any:
    """A checker for an integer of at least ``low``."""

    def check(value: Any, what: str, base: Path | None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            hint = " (0 means unlimited)" if low == 0 else ""
            raise InvalidInputError(f"{what}: must be an integer >= {low}{hint}, got {value!r}")
        return value

    return check


def _seconds(value: Any, what: str, base: Path | None) -> float:
    """A non-negative number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise InvalidInputError(f"{what}: must be a number of seconds >= 0 (0: off), got {value!r}")
    return float(value)


_CHECKS: Mapping[str, Any] = MappingProxyType(
    {
        "root": _path,
        "max_concurrent_downloads": _int(0),
        "max_concurrent_uploads": _int(0),
        "cpu": _int(1),
        "max_attempts": _int(1),
        "stall_timeout": _seconds,
        "verify_diffids": _bool,
        "proxy": _proxy,
        "tls_verify": _bool,
        "cert_dir": _path,
    }
)


def _host(value: Any, what: str) -> str:
    """A registry ``host[:port]``: no scheme, no path, lower-cased."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{what}: a registry must be a host[:port] string, got {value!r}")
    host = value.strip().lower()
    parts = urlsplit(f"//{host}")
    if "://" in host or "/" in host or not parts.hostname:
        raise InvalidInputError(f"{what}: {value!r} must be a registry host[:port], not a URL")
    return host


def _hosts(value: Any, where: str) -> list[str]:
    """The hosts of ``insecure_registries`` (a list, or a comma-separated string)."""
    what = _label(where, "insecure_registries")
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise InvalidInputError(f"{what}: must be a list of registry hosts, got {value!r}")
    return [_host(item, what) for item in items]


def _registries(value: Any, where: str, base: Path | None) -> dict[str, RegistrySettings]:
    """The ``[registries."host"]`` tables."""
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{where}: registries: must be a table of registry hosts")
    out: dict[str, RegistrySettings] = {}
    for name, table in value.items():
        host = _host(name, f"{where}: registries")
        out[host] = _registry(table, f'{where}: registries."{name}"', base)
    return out


def _registry(table: Any, what: str, base: Path | None) -> RegistrySettings:
    """One registry's table: ``mirrors``, ``insecure``, ``ca_file``."""
    if isinstance(table, RegistrySettings):
        return table
    if not isinstance(table, Mapping):
        raise InvalidInputError(f"{what}: must be a table with {', '.join(_REGISTRY_KEYS)}")
    for key in table:
        if key not in _REGISTRY_KEYS:
            raise InvalidInputError(
                f"{what}.{key}: unknown key (known: {', '.join(_REGISTRY_KEYS)})"
            )
    insecure = table.get("insecure")
    if insecure is not None and not isinstance(insecure, bool):
        raise InvalidInputError(f"{what}.insecure: must be true or false, got {insecure!r}")
    ca = table.get("ca_file")
    return RegistrySettings(
        mirrors=_mirrors(table.get("mirrors", []), f"{what}.mirrors"),
        insecure=insecure,
        ca_file=None if ca is None else _path(ca, f"{what}.ca_file", base),
    )


def _mirrors(value: Any, what: str) -> tuple[str, ...]:
    """Mirror base URLs: a list of ``http(s)://host[:port][/path]`` strings."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise InvalidInputError(f"{what}: must be a list of http(s) URLs, got {value!r}")
    for url in value:
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidInputError(f"{what}: {url!r} is not an http:// or https:// URL")
    return tuple(u.rstrip("/") for u in value)
