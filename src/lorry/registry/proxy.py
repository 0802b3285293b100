"""Which forward proxy (if any) a registry URL goes through, read as curl and Go read the env.

``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` are honoured in both cases (lower case wins, as in
curl); a ``proxy`` setting from lorry.toml overrides the environment's proxy URL. ``NO_PROXY``
entries may be ``*``, a host or domain suffix (``example.com`` and ``.example.com`` both match
``a.example.com``), ``host:port``, an IP address or a CIDR block. Pure logic, no I/O: the
session opens the ``CONNECT`` tunnel.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from lorry.errors import InvalidInputError
from lorry.registry.redact import remember_secret

__all__ = ["Proxy", "ProxyRules", "parse_proxy_url"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class Proxy:
    """One forward proxy: where it listens and the ``Proxy-Authorization`` value, if any."""

    host: str
    port: int
    #: ``Basic …`` from the URL's userinfo; never logged (registered with the redactor).
    authorization: str | None = field(default=None, repr=False)

    @property
    def netloc(self) -> str:
        """``host:port`` of the proxy, without credentials (safe to show)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_proxy_url(url: str, *, source: str = "proxy") -> Proxy:
    """Parse ``http://[user:pass@]host[:port]``; a bare ``host:port`` means ``http://``.

    ``source`` names where the URL came from (``HTTPS_PROXY``, ``lorry.toml proxy``) so a bad
    value gives one line naming the thing at fault.
    """
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidInputError(f"{source}: proxy URL does not parse: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS:
        raise InvalidInputError(f"{source}: unsupported proxy scheme {parts.scheme!r} (use http)")
    if parts.scheme == "https":
        raise InvalidInputError(f"{source}: TLS to the proxy itself is not supported (use http)")
    if not parts.hostname:
        raise InvalidInputError(f"{source}: proxy URL has no host")
    auth = None
    if parts.username is not None:
        user = unquote(parts.username)
        password = unquote(parts.password or "")
        remember_secret(password)
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        remember_secret(token)
        auth = f"Basic {token}"
    return Proxy(parts.hostname, port or _DEFAULT_PORTS[parts.scheme], auth)


def _split_entries(value: str) -> tuple[str, ...]:
    return tuple(e.strip().lower() for e in value.split(",") if e.strip())


@dataclass(frozen=True)
class ProxyRules:
    """The proxies for HTTP and HTTPS and the ``NO_PROXY`` bypass list."""

    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()
    #: Go's (and so docker's) rule: ``localhost`` and loopback addresses never use a proxy.
    direct_loopback: bool = False

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], setting: str | None = None, *, direct_loopback: bool = False
    ) -> ProxyRules:
        """Read the environment (both cases); ``setting`` (lorry.toml ``proxy``) wins for both."""

        def get(name: str) -> tuple[str, str] | None:
            for key in (name.lower(), name.upper()):
                value = env.get(key, "").strip()
                if value:
                    return key, value
            return None

        http: Proxy | None
        https: Proxy | None
        if setting:
            one = parse_proxy_url(setting, source="lorry.toml proxy")
            http = https = one
        else:
            got_http, got_https = get("HTTP_PROXY"), get("HTTPS_PROXY")
            http = parse_proxy_url(got_http[1], source=got_http[0]) if got_http else None
            https = parse_proxy_url(got_https[1], source=got_https[0]) if got_https else None
        got_no = get("NO_PROXY")
        no_proxy = _split_entries(got_no[1]) if got_no else ()
        return cls(http, https, no_proxy, direct_loopback)

    def for_url(self, scheme: str, host: str, port: int | None = None) -> Proxy | None:
        """The proxy to use for ``scheme://host:port``, or None to connect directly."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self.bypassed(host, port or _DEFAULT_PORTS.get(scheme, 443)):
            return None
        return proxy

    def bypassed(self, host: str, port: int) -> bool:
        """Whether ``NO_PROXY`` says to go direct to ``host:port``."""
        name = host.strip("[]").lower().rstrip(".")
        try:
            addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(name)
        except ValueError:
            addr = None
        if self.direct_loopback and (
            name == "localhost" or (addr is not None and addr.is_loopback)
        ):
            return True
        return any(_matches(entry, name, addr, port) for entry in self.no_proxy)


def _matches(
    entry: str,
    name: str,
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    port: int,
) -> bool:
    if entry == "*":
        return True
    if "/" in entry:
        try:
            net = ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return False
        return addr is not None and addr.version == net.version and addr in net
    entry_host, entry_port = _split_host_port(entry)
    if entry_port is not None and entry_port != port:
        return False
    if addr is not None:
        try:
            return ipaddress.ip_address(entry_host) == addr
        except ValueError:
            return False
    suffix = entry_host.lstrip("*").lstrip(".").rstrip(".")
    return bool(suffix) and (name == suffix or name.endswith("." + suffix))


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None
