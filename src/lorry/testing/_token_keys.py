"""The token issuer's key pair, self-signed certificate and JWT signing (RS256 / ES256).

docker-registry 2.8 finds a token's signing key from the JWT header: ``x5c`` (a certificate
chain that must verify against its ``rootcertbundle``) or ``kid`` (the libtrust key ID of a
public key in that bundle). Both are produced here.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

__all__ = ["CA_KEY_USAGE", "SigningKey", "b64url", "libtrust_key_id"]

#: What a CA (the token issuer's, the test CA of :mod:`lorry.testing.tls`) may sign with.
CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    key_cert_sign=True,
    crl_sign=True,
    encipher_only=False,
    decipher_only=False,
)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS wants it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_der: bytes) -> str:
    """The libtrust key ID of a DER SubjectPublicKeyInfo: base32 of 240 bits of its sha256."""
    encoded = base64.b32encode(hashlib.sha256(public_der).digest()[:30]).decode()
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


def _certificate(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lorry test token issuer")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(CA_KEY_USAGE, critical=True)
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class SigningKey:
    """A private key with its self-signed certificate; signs JWTs."""

    algorithm: Literal["RS256", "ES256"]
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls, algorithm: Literal["RS256", "ES256"]) -> SigningKey:
        """A fresh key pair and certificate for ``algorithm``."""
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if algorithm == "RS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        return cls(algorithm, key, _certificate(key))

    @property
    def cert_pem(self) -> bytes:
        """The certificate in PEM: the registry's ``rootcertbundle``."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_id(self) -> str:
        """The libtrust key ID the registry computes for this public key."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return libtrust_key_id(der)

    def _sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants raw r || s

    def sign_jwt(self, claims: Mapping[str, Any], *, key_header: Literal["x5c", "kid"]) -> str:
        """A compact JWS of ``claims``, naming the key by ``x5c`` or ``kid``."""
        header: dict[str, Any] = {"typ": "JWT", "alg": self.algorithm}
        if key_header == "x5c":
            der = self.cert.public_bytes(serialization.Encoding.DER)
            header["x5c"] = [base64.b64encode(der).decode()]
        else:
            header["kid"] = self.key_id
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        return f"{signing_input}.{b64url(self._sign(signing_input.encode()))}"
