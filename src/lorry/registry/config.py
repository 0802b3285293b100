"""Per-registry host configuration: endpoints, mirrors, plain HTTP and TLS trust.

Registry names in references are not always the hosts to talk to: ``docker.io`` is served by
``registry-1.docker.io``, and a registry may have mirrors (tried in order for reads, then the
upstream). Plain HTTP is used only for loopback hosts (docker treats 127.0.0.0/8 as insecure) or
hosts the user marks insecure; everything else is HTTPS with verified certificates, optionally
against a custom CA bundle.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lorry.errors import InvalidInputError
from lorry.registry import certsd
from lorry.registry.redact import get_logger, remember_secret

__all__ = [
    "DOCKER_HUB",
    "DOCKER_HUB_ENDPOINT",
    "Endpoint",
    "HostConfig",
    "RegistryConfig",
    "is_loopback",
]

log = get_logger(__name__)

#: The registry name Docker Hub images carry.
DOCKER_HUB = "docker.io"
#: The host that actually serves Docker Hub's Distribution API.
DOCKER_HUB_ENDPOINT = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (with or without a port)."""
    name = _hostname(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _hostname(host: str) -> str:
    """The host part of ``host[:port]`` (IPv6 brackets removed), lower-cased."""
    parsed = urlsplit(f"//{host}")
    return (parsed.hostname or host).lower()


@dataclass(frozen=True)
class HostConfig:
    """What the user configured for one registry name."""

    #: Base URLs of mirrors (``https://mirror.example`` or ``http://127.0.0.1:5001``), in order.
    mirrors: tuple[str, ...] = ()
    #: Allow plain HTTP (and unverified TLS) for this host.
    insecure: bool = False
    #: A PEM CA bundle trusted in addition to the system store.
    ca_file: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """One base URL to send a registry's requests to, and how to authenticate there."""

    #: ``scheme://host[:port]`` without a trailing slash.
    base_url: str
    #: The name credentials are looked up by (the registry name, or the mirror's host).
    auth_name: str
    #: True for a mirror, False for the registry itself.
    mirror: bool = False
    #: Skip TLS verification (only for hosts marked insecure).
    insecure: bool = False
    #: Extra CA bundle for TLS verification.
    ca_file: str | None = None

    @property
    def host(self) -> str:
        """``host[:port]`` of the endpoint."""
        return urlsplit(self.base_url).netloc


@dataclass
class RegistryConfig:
    """Host configuration for every registry a session talks to (default: none configured)."""

    hosts: dict[str, HostConfig] = field(default_factory=dict)
    #: certs.d roots read for every TLS host (None: docker's, podman's and the user's, or
    #: ``LORRY_CERTS_D``); a ``--cert-dir DIR`` is one root holding the files directly.
    certs_roots: tuple[Path, ...] | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RegistryConfig:
        """Build from ``{"host": {"mirrors": [...], "insecure": bool, "ca_file": str}}``."""
        hosts: dict[str, HostConfig] = {}
        for name, raw in data.items():
            if not isinstance(raw, Mapping):
                raise InvalidInputError(f"registry config for {name!r} must be a table")
            mirrors = raw.get("mirrors", ())
            if isinstance(mirrors, str) or not all(isinstance(m, str) for m in mirrors):
                raise InvalidInputError(f"registry config for {name!r}: mirrors must be URLs")
            ca = raw.get("ca_file")
            hosts[_canonical(name)] = HostConfig(
                mirrors=tuple(_without_userinfo(m.rstrip("/"), name) for m in mirrors),
                insecure=bool(raw.get("insecure", False)),
                ca_file=str(ca) if ca else None,
            )
        return cls(hosts)

    def host(self, registry: str) -> HostConfig:
        """The configuration of ``registry`` (defaults when none was given)."""
        return self.hosts.get(_canonical(registry), HostConfig())

    def endpoint(self, registry: str) -> Endpoint:
        """The registry's own endpoint: HTTPS unless loopback or marked insecure."""
        cfg = self.host(registry)
        name = _canonical(registry)
        host = DOCKER_HUB_ENDPOINT if name == DOCKER_HUB else name
        scheme = "http" if (cfg.insecure or is_loopback(host)) else "https"
        return Endpoint(f"{scheme}://{host}", name, False, cfg.insecure, cfg.ca_file)

    def pull_endpoints(self, registry: str) -> list[Endpoint]:
        """Mirrors in configured order, then the registry itself: the order reads try."""
        cfg = self.host(registry)
        out = []
        for url in cfg.mirrors:
            parts = urlsplit(url if "://" in url else f"https://{url}")
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise InvalidInputError(f"mirror {url!r} of {registry} is not an http(s) URL")
            mirror_cfg = self.host(parts.netloc)
            base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
            out.append(Endpoint(base, parts.netloc, True, mirror_cfg.insecure, mirror_cfg.ca_file))
        out.append(self.endpoint(registry))
        return out

    def allows_plain_http(self, host: str) -> bool:
        """True when ``host`` may be spoken to (and sent credentials) over plain HTTP.

        ``host`` may carry HTTP's default port (``r.example:80``), which the user's
        ``r.example`` means too.
        """
        bare = host.removesuffix(":80")
        return is_loopback(host) or self.host(host).insecure or self.host(bare).insecure

    def ssl_context(self, endpoint_host: str) -> ssl.SSLContext:
        """A verifying TLS context for the host, with its custom CA if one is configured."""
        cfg = self.host(endpoint_host)
        ctx = ssl.create_default_context()
        if cfg.ca_file:
            try:
                ctx.load_verify_locations(cafile=cfg.ca_file)
            except (OSError, ssl.SSLError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise InvalidInputError(
                    f"CA file {cfg.ca_file} for registry {endpoint_host}: {reason}"
                ) from exc
        roots = certsd.default_roots() if self.certs_roots is None else self.certs_roots
        certsd.load_into(ctx, certsd.read_host_dir(endpoint_host, roots))
        if cfg.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def _without_userinfo(url: str, registry: str) -> str:
    """The mirror URL without ``user:password@``, which lorry never sends nor prints.

    Credentials for a mirror come from ``lorry login MIRROR-HOST`` like any registry's; a
    password written into the URL is masked in every log line and the user told once.
    """
    try:
        parts = urlsplit(url if "://" in url else f"https://{url}")
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    remember_secret(parts.password)
    hostport = parts.netloc.rpartition("@")[2]
    log.warning(
        "mirror %s of %s: credentials in the URL are ignored; use lorry login %s",
        hostport,
        registry,
        hostport,
    )
    return parts._replace(netloc=hostport).geturl() if "://" in url else hostport + parts.path


def _canonical(registry: str) -> str:
    """Registry names compare case-insensitively; Docker Hub has several spellings."""
    name = registry.lower().rstrip("/")
    return DOCKER_HUB if name in _HUB_ALIASES else name
