"""Tests of lorry.streams: the one-pass layer verification."""

from __future__ import annotations

import gzip
import hashlib
import random

import pytest

from lorry.digest import Digest
from lorry.errors import IntegrityError
from lorry.streams import CountingIterator, LayerDigester, verify_bytes

TAR = random.Random(3).randbytes(300_000)
GZ = gzip.compress(TAR)
GZ_DIGEST = Digest.of(GZ)
DIFF_ID = Digest.of(TAR)


def _feed(d: LayerDigester, blob: bytes, step: int = 4096) -> None:
    for i in range(0, len(blob), step):
        d.update(blob[i : i + step])


def test_one_pass_gives_blob_digest_and_diff_id() -> None:
    d = LayerDigester(GZ_DIGEST, len(GZ), "gzip", expected_diff_id=DIFF_ID)
    _feed(d, GZ)
    res = d.finish()
    assert res.blob_digest == GZ_DIGEST
    assert res.diff_id == DIFF_ID == Digest("sha256", hashlib.sha256(TAR).hexdigest())
    assert (res.size, res.uncompressed_size) == (len(GZ), len(TAR))


def test_flipped_byte_is_an_integrity_error_naming_the_blob() -> None:
    bad = bytearray(GZ)
    bad[len(bad) // 2] ^= 0x01
    d = LayerDigester(GZ_DIGEST, len(GZ), "gzip", what=f"blob {GZ_DIGEST}")
    with pytest.raises(IntegrityError, match=str(GZ_DIGEST)):
        _feed(d, bytes(bad))
        d.finish()


def test_diff_id_mismatch() -> None:
    d = LayerDigester(GZ_DIGEST, len(GZ), "gzip", expected_diff_id=Digest.of(b"other"))
    _feed(d, GZ)
    with pytest.raises(IntegrityError, match="DiffID mismatch"):
        d.finish()


def test_too_long_fails_early_and_short_fails_at_finish() -> None:
    d = LayerDigester(GZ_DIGEST, len(GZ) - 1, "gzip")
    with pytest.raises(IntegrityError, match="size mismatch"):
        _feed(d, GZ)
    short = LayerDigester(GZ_DIGEST, len(GZ), "gzip")
    _feed(short, GZ[:-10])
    with pytest.raises(IntegrityError):
        short.finish()


def test_uncompressed_layer_diff_id_is_blob_digest() -> None:
    d = LayerDigester(DIFF_ID, None, "none")
    _feed(d, TAR)
    assert d.offset == len(TAR)
    assert d.finish().diff_id == DIFF_ID


def test_verify_bytes_and_counting() -> None:
    assert verify_bytes(b"abc", Digest.of(b"abc"), 3) == b"abc"
    with pytest.raises(IntegrityError):
        verify_bytes(b"abd", Digest.of(b"abc"))
    seen: list[int] = []
    assert b"".join(CountingIterator([b"ab", b"cde"], seen.append)) == b"abcde"
    assert seen == [2, 5]
