"""Per-registry TLS material from ``certs.d`` directories, read as docker and podman read them.

For a registry ``HOST[:PORT]`` each root's ``HOST[:PORT]/`` directory is read: ``*.crt`` files
are extra CAs, ``NAME.cert`` + ``NAME.key`` are a client certificate pair. Roots, in order:
``/etc/docker/certs.d``, ``/etc/containers/certs.d``, ``~/.config/containers/certs.d``; the
``LORRY_CERTS_D`` (``os.pathsep``-separated) or ``RegistryConfig.certs_roots`` replaces them.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lorry.errors import InvalidInputError

__all__ = ["CertsD", "default_roots", "load_into", "merge", "read_dir", "read_host_dir"]

_PEM_MARK = b"-----BEGIN "


def default_roots(env: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The certs.d roots to search: ``LORRY_CERTS_D`` if set, else docker's and podman's."""
    env = os.environ if env is None else env
    override = env.get("LORRY_CERTS_D")
    if override:
        return tuple(Path(p) for p in override.split(os.pathsep) if p)
    home = Path(env.get("HOME") or Path.home())
    return (
        Path("/etc/docker/certs.d"),
        Path("/etc/containers/certs.d"),
        home / ".config" / "containers" / "certs.d",
    )


@dataclass(frozen=True)
class CertsD:
    """The CA files and client (cert, key) pairs found for one registry host."""

    cas: tuple[Path, ...] = ()
    clients: tuple[tuple[Path, Path], ...] = ()


def read_host_dir(host: str, roots: Sequence[Path]) -> CertsD:
    """Collect ``*.crt`` and ``*.cert``/``*.key`` pairs for ``host`` across ``roots``."""
    found = CertsD()
    for root in roots:
        if (root / host).is_dir():
            found = merge(found, read_dir(root / host))
    return found


def read_dir(d: Path) -> CertsD:
    """The ``*.crt`` CAs and ``*.cert``/``*.key`` pairs directly in ``d`` (``--cert-dir``).

    A ``.cert`` without its ``.key`` (or the reverse) is bad input naming the file, as docker
    refuses it too; every file must be PEM. A directory that cannot be listed names itself.
    """
    try:
        files = sorted(d.iterdir())
    except OSError as exc:
        raise InvalidInputError(f"certs.d {d}: {exc.strerror or exc}") from None
    cas: list[Path] = []
    clients: list[tuple[Path, Path]] = []
    for f in files:
        if f.suffix == ".crt":
            cas.append(_pem(f))
        elif f.suffix == ".cert":
            key = f.with_suffix(".key")
            if not key.is_file():
                raise InvalidInputError(f"certs.d {f}: client certificate without {key.name}")
            clients.append((_pem(f), _pem(key)))
        elif f.suffix == ".key" and not f.with_suffix(".cert").is_file():
            raise InvalidInputError(f"certs.d {f}: client key without {f.stem}.cert")
    return CertsD(tuple(cas), tuple(clients))


def merge(a: CertsD, b: CertsD) -> CertsD:
    """Both directories' files, ``a``'s first."""
    return CertsD(a.cas + b.cas, a.clients + b.clients)


def load_into(ctx: ssl.SSLContext, found: CertsD) -> None:
    """Trust the CAs and present the client pairs; a mismatched key names its file."""
    for ca in found.cas:
        try:
            ctx.load_verify_locations(cafile=str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInputError(f"certs.d {ca}: not a usable CA certificate: {exc}") from None
    for cert, key in found.clients:
        try:
            ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
        except (OSError, ssl.SSLError) as exc:
            raise InvalidInputError(
                f"certs.d {key}: key does not match {cert.name} or is unreadable: {exc}"
            ) from None


def _pem(path: Path) -> Path:
    try:
        head = path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"certs.d {path}: {exc.strerror or exc}") from None
    if _PEM_MARK not in head:
        raise InvalidInputError(f"certs.d {path}: not a PEM file")
    return path
