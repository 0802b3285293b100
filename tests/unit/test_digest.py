"""Tests of lorry.digest: parsing, streaming verification and ChainIDs."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorry.digest import Digest, Hasher, Verifier, chain_id, chain_ids
from lorry.errors import IntegrityError, InvalidInputError

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_parse_and_str_round_trip() -> None:
    d = Digest.parse(EMPTY)
    assert d.algorithm == "sha256"
    assert str(d) == EMPTY
    assert d.short == "e3b0c44298fc"
    assert Digest.of(b"") == d


@pytest.mark.parametrize(
    "text",
    [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        "sha256:abc",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "sha512:" + "a" * 64,
        "",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidInputError):
        Digest.parse(text)


def test_sha512() -> None:
    d = Digest.of(b"x", "sha512")
    assert d.hex == hashlib.sha512(b"x").hexdigest()
    assert Digest.parse(str(d)) == d


def test_chain_id_rule() -> None:
    a, b, c = (Digest.of(x) for x in (b"a", b"b", b"c"))
    ids = chain_ids([a, b, c])
    assert ids[0] == a
    assert ids[1] == Digest.of(f"{a} {b}".encode())
    assert ids[2] == Digest.of(f"{ids[1]} {c}".encode())
    assert chain_id([a, b, c]) == ids[2]
    with pytest.raises(InvalidInputError):
        chain_id([])


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_hasher_streams_like_one_shot(chunks: list[bytes]) -> None:
    h = Hasher()
    for c in chunks:
        h.update(c)
    data = b"".join(chunks)
    assert h.digest() == Digest.of(data)
    assert h.size == len(data)


def test_verifier_detects_mismatch_and_overrun() -> None:
    good = Digest.of(b"hello")
    v = Verifier(good, 5, what="blob x")
    v.update(b"hello")
    assert v.verify() == good
    bad = Verifier(good, 5, what="blob x")
    bad.update(b"hellO")
    with pytest.raises(IntegrityError, match="blob x: digest mismatch"):
        bad.verify()
    long = Verifier(good, 5)
    with pytest.raises(IntegrityError, match="size mismatch"):
        long.update(b"hello!")
    short = Verifier(good, 5)
    short.update(b"hell")
    with pytest.raises(IntegrityError, match="got 4 bytes"):
        short.verify()
