"""Per-registry host configuration: endpoints, mirrors, plain HTTP and TLS trust.

Registry names in references are not always the hosts to talk to: ``docker.io`` is served by
``registry-1.docker.io``, and a registry may have mirrors (tried in order for reads, then the
upstream). Docker's rule for TLS: a host is *insecure* when the user marks it so, when
``--tls-verify=false`` is given, or by default when it is loopback (127.0.0.0/8, ``::1``,
``localhost``); an insecure host is tried over HTTPS without certificate verification first and
over plain HTTP when no TLS session can be set up (the transport settles that once per session).
Every other host is HTTPS with verified certificates: the system's CAs, a configured CA file,
and certs.d (or ``--cert-dir``) CAs and client certificates. ``insecure = false`` for a
loopback host makes it as strict as any other.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
    #: True: unverified TLS, then plain HTTP, allowed; False: verified HTTPS only (loopback
    #: too); None: docker's default (loopback hosts are insecure, others are not).
    insecure: bool | None = None
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
    #: Skip TLS verification (only for insecure hosts).
    insecure: bool = False
    #: Extra CA bundle for TLS verification.
    ca_file: str | None = None
    #: ``base_url`` is HTTPS, to be replaced by plain HTTP when no TLS session can be set up
    #: (an insecure host; :meth:`lorry.registry.transport.Transport.settle` decides once).
    http_fallback: bool = False

    @property
    def host(self) -> str:
        """``host[:port]`` of the endpoint."""
        return urlsplit(self.base_url).netloc

    def plain(self) -> Endpoint:
        """The same endpoint over plain HTTP: where an insecure host goes when TLS fails."""
        return replace(
            self, base_url="http://" + self.base_url.removeprefix("https://"), http_fallback=False
        )


@dataclass
class RegistryConfig:
    """Host configuration for every registry a session talks to (default: none configured)."""

    hosts: dict[str, HostConfig] = field(default_factory=dict)
    #: certs.d roots read for every TLS host (None: docker's, podman's and the user's, or
    #: ``LORRY_CERTS_D``).
    certs_roots: tuple[Path, ...] | None = None
    #: ``--cert-dir DIR``: the ``*.crt``, ``*.cert`` and ``*.key`` files for every host, read
    #: instead of certs.d (as skopeo does).
    cert_dir: Path | None = None
    #: False (``--tls-verify=false``): every host is insecure.
    tls_verify: bool = True
    #: lorry.toml's ``proxy``: the forward proxy for HTTP and HTTPS, over the environment's.
    proxy: str | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], **options: Any) -> RegistryConfig:
        """Build from ``{"host": {"mirrors": [...], "insecure": bool, "ca_file": str}}``;
        ``options`` are the other fields (``cert_dir``, ``tls_verify``, ``proxy``)."""
        hosts: dict[str, HostConfig] = {}
        for name, raw in data.items():
            if not isinstance(raw, Mapping):
                raise InvalidInputError(f"registry config for {name!r} must be a table")
            mirrors = raw.get("mirrors", ())
            if isinstance(mirrors, str) or not all(isinstance(m, str) for m in mirrors):
                raise InvalidInputError(f"registry config for {name!r}: mirrors must be URLs")
            ca = raw.get("ca_file")
            insecure = raw.get("insecure")
            hosts[_canonical(name)] = HostConfig(
                mirrors=tuple(_without_userinfo(m.rstrip("/"), name) for m in mirrors),
                insecure=None if insecure is None else bool(insecure),
                ca_file=str(ca) if ca else None,
            )
        return cls(hosts, **options)

    def host(self, registry: str) -> HostConfig:
        """The configuration of ``registry`` (defaults when none was given)."""
        return self.hosts.get(_canonical(registry), HostConfig())

    def insecure(self, host: str) -> bool:
        """Whether ``host[:port]`` is insecure: unverified TLS, then plain HTTP, allowed.

        A host given with HTTP's or HTTPS's default port (``r.example:443``) has the settings
        of ``r.example`` when it has none of its own.
        """
        if not self.tls_verify:
            return True
        for name in (host, host.removesuffix(":80"), host.removesuffix(":443")):
            configured = self.host(name).insecure
            if configured is not None:
                return configured
        return is_loopback(host)

    def endpoint(self, registry: str) -> Endpoint:
        """The registry's own endpoint: HTTPS, with the plain-HTTP fallback when insecure."""
        cfg = self.host(registry)
        name = _canonical(registry)
        host = DOCKER_HUB_ENDPOINT if name == DOCKER_HUB else name
        insecure = self.insecure(name)
        return Endpoint(f"https://{host}", name, False, insecure, cfg.ca_file, insecure)

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
            insecure = self.insecure(parts.netloc)
            out.append(Endpoint(base, parts.netloc, True, insecure, mirror_cfg.ca_file))
        out.append(self.endpoint(registry))
        return out

    def allows_plain_http(self, host: str) -> bool:
        """True when ``host`` may be spoken to (and sent credentials) over plain HTTP.

        ``host`` may carry HTTP's default port (``r.example:80``), which the user's
        ``r.example`` means too.
        """
        return self.insecure(host)

    def ssl_context(self, endpoint_host: str) -> ssl.SSLContext:
        """The TLS context for ``host[:port]``: its CA file, certs.d (or ``--cert-dir``) CAs
        and client certificate, and no verification when the host is insecure."""
        bare = endpoint_host.removesuffix(":443")
        cfg = self.host(endpoint_host) if self.host(endpoint_host).ca_file else self.host(bare)
        insecure = self.insecure(endpoint_host)
        if insecure:  # nothing is verified: skip the system CA store (45 ms and 2 MB here)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context()
        if cfg.ca_file:
            try:
                ctx.load_verify_locations(cafile=cfg.ca_file)
            except (OSError, ssl.SSLError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                raise InvalidInputError(
                    f"CA file {cfg.ca_file} for registry {endpoint_host}: {reason}"
                ) from exc
        if self.cert_dir is not None:
            found = certsd.read_dir(self.cert_dir)
        else:
            roots = certsd.default_roots() if self.certs_roots is None else self.certs_roots
            found = certsd.read_host_dir(endpoint_host, roots)
            if bare != endpoint_host:  # docker's certs.d names a port-443 host without the port
                found = certsd.merge(found, certsd.read_host_dir(bare, roots))
        certsd.load_into(ctx, found)
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
