"""TLS material for test registries: a CA, a server certificate and a client certificate.

:func:`make_tls_files` writes PEM files under a directory: the CA (also the registry's
``clientcas``), a server pair whose subject alternative names are the given DNS names and IP
addresses, and a client pair signed by the same CA (for ``http.tls.clientcas``).
:func:`local_name` finds a name for this machine that resolves to a loopback address but is
not ``localhost`` or an IP literal, so lorry treats it as a remote host (verified TLS, proxies
used) while the registry still listens on loopback.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lorry.testing._token_keys import CA_KEY_USAGE

__all__ = ["TlsFiles", "local_name", "make_tls_files"]

_Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class TlsFiles:
    """Where the PEM files are."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def local_name() -> tuple[str, str] | None:
    """``(name, address)``: this machine's host name and the loopback address it resolves to.

    None when the host name does not resolve to a loopback address (then no such name exists).
    """
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        return None
    if name == "localhost" or not ipaddress.ip_address(address).is_loopback:
        return None
    return name, address


def _key() -> _Key:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _builder(subject: str, issuer: str, key: _Key) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )


def _write(path: Path, cert: x509.Certificate | None, key: _Key | None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        assert key is not None
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
    return path


def make_tls_files(workdir: Path, names: Sequence[str]) -> TlsFiles:
    """Write a CA, a server pair for ``names`` (DNS names or IP addresses) and a client pair."""
    workdir.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = (
        _builder("lorry test CA", "lorry test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    alt: list[x509.GeneralName] = []
    for n in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            alt.append(x509.DNSName(n))
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    server_key = _key()
    server = (
        _builder(names[0], "lorry test CA", server_key)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(aki, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    client_key = _key()
    client = (
        _builder("lorry test client", "lorry test CA", client_key)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(aki, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return TlsFiles(
        ca_cert=_write(workdir / "ca.crt", ca, None),
        server_cert=_write(workdir / "server.cert", server, None),
        server_key=_write(workdir / "server.key", None, server_key),
        client_cert=_write(workdir / "client.cert", client, None),
        client_key=_write(workdir / "client.key", None, client_key),
    )
