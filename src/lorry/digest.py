"""Content digests: parsing, hashing while streaming, and the layer identities built on them.

A :class:`Digest` is ``algorithm:hex`` as the OCI image spec defines it (sha256 and sha512,
lowercase hex of the right length). A *DiffID* is the digest of an uncompressed layer tar; a
*ChainID* names a layer together with every layer below it: ChainID(1) = DiffID(1),
ChainID(n) = sha256(ChainID(n-1) + " " + DiffID(n)).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NewType

from lorry.errors import IntegrityError, InvalidInputError

__all__ = [
    "ALGORITHMS",
    "ChainID",
    "DiffID",
    "Digest",
    "Hasher",
    "Verifier",
    "chain_id",
    "chain_ids",
    "digest_bytes",
]

#: Supported algorithms and the length of their hex encoding.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


@dataclass(frozen=True, order=True, slots=True)
class Digest:
    """A validated content digest such as ``sha256:e3b0c4…``."""

    algorithm: str
    hex: str

    def __post_init__(self) -> None:
        want = ALGORITHMS.get(self.algorithm)
        if want is None:
            raise InvalidInputError(f"unsupported digest algorithm {self.algorithm!r}")
        if len(self.hex) != want or not _HEX.fullmatch(self.hex):
            raise InvalidInputError(
                f"invalid {self.algorithm} digest {self.algorithm}:{self.hex}: "
                f"want {want} lowercase hex characters"
            )

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse ``alg:hex``; raise :class:`InvalidInputError` naming the text when malformed."""
        alg, sep, hexpart = text.partition(":")
        if not sep:
            raise InvalidInputError(f"invalid digest {text!r}: missing algorithm prefix")
        return cls(alg, hexpart)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        """The digest of ``data`` computed with ``algorithm``."""
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    @property
    def short(self) -> str:
        """The 12-hex-character short form used in progress output (no algorithm)."""
        return self.hex[:12]

    @property
    def encoded(self) -> str:
        """The hex part, as the OCI layout's ``blobs/<alg>/<encoded>`` path wants it."""
        return self.hex

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


#: Digest of an uncompressed layer tar.
DiffID = NewType("DiffID", Digest)
#: Identity of a layer together with all layers below it.
ChainID = NewType("ChainID", Digest)


def digest_bytes(data: bytes, algorithm: str = "sha256") -> Digest:
    """The digest of ``data``; a function spelling of :meth:`Digest.of`."""
    return Digest.of(data, algorithm)


def chain_ids(diff_ids: Iterable[Digest]) -> list[ChainID]:
    """Every ChainID of a layer stack, bottom to top."""
    out: list[ChainID] = []
    for diff_id in diff_ids:
        if not out:
            out.append(ChainID(diff_id))
        else:
            data = f"{out[-1]} {diff_id}".encode()
            out.append(ChainID(Digest.of(data)))
    return out


def chain_id(diff_ids: Iterable[Digest]) -> ChainID:
    """The ChainID of the top of a layer stack; raise on an empty stack."""
    ids = chain_ids(diff_ids)
    if not ids:
        raise InvalidInputError("chain_id of an empty layer stack")
    return ids[-1]


class Hasher:
    """Hash bytes as they stream past and count them."""

    def __init__(self, algorithm: str = "sha256") -> None:
        if algorithm not in ALGORITHMS:
            raise InvalidInputError(f"unsupported digest algorithm {algorithm!r}")
        self.algorithm = algorithm
        self._h = hashlib.new(algorithm)
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next chunk."""
        self._h.update(data)
        self.size += len(data)

    def digest(self) -> Digest:
        """The digest of everything fed so far."""
        return Digest(self.algorithm, self._h.hexdigest())


class Verifier(Hasher):
    """Hash a stream and check it against an expected digest and, optionally, a size.

    ``update`` raises :class:`IntegrityError` as soon as more bytes than ``size`` arrive;
    :meth:`verify` raises at the end on a size or digest mismatch. ``what`` names the object in
    the message, e.g. ``blob sha256:ab12… from registry.example/app``.
    """

    def __init__(self, expected: Digest, size: int | None = None, what: str = "") -> None:
        super().__init__(expected.algorithm)
        self.expected = expected
        self.expected_size = size
        self.what = what or f"content {expected}"

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed the next chunk; fail early when the stream is longer than announced."""
        super().update(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise IntegrityError(
                f"{self.what}: size mismatch: more than the expected {self.expected_size} bytes"
            )

    def verify(self) -> Digest:
        """Check size and digest after the last chunk; return the digest on success."""
        if self.expected_size is not None and self.size != self.expected_size:
            raise IntegrityError(
                f"{self.what}: size mismatch: got {self.size} bytes, expected {self.expected_size}"
            )
        got = self.digest()
        if got != self.expected:
            raise IntegrityError(f"{self.what}: digest mismatch: got {got}")
        return got
