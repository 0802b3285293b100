"""Tests of lorry.compression: round trips, multi-member streams, bounded output, corruption."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from lorry.compression import MAX_CHUNK, Compression, compress_chunks, decompressor, detect
from lorry.errors import IntegrityError, UnsupportedError


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def _inflate(kind: Compression, blob: bytes, step: int = 1000) -> bytes:
    d = decompressor(kind, "blob x")
    out = [piece for c in _chunks(blob, step) for piece in d.feed(c)]
    out.extend(d.finish())
    return b"".join(out)


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
@given(data=st.binary(max_size=20000), step=st.integers(1, 5000))
@settings(max_examples=30, deadline=None)
def test_round_trip(kind: Compression, data: bytes, step: int) -> None:
    blob = b"".join(compress_chunks(iter(_chunks(data, 777)), kind))
    assert _inflate(kind, blob, step) == data


def test_detect() -> None:
    assert detect(gzip.compress(b"x")) == "gzip"
    assert detect(zstandard.ZstdCompressor().compress(b"x")) == "zstd"
    assert detect(b"ustar") == "none"


def test_multi_member_gzip_and_multi_frame_zstd() -> None:
    blob = gzip.compress(b"first ") + gzip.compress(b"second")
    assert _inflate("gzip", blob, 7) == b"first second"
    z = zstandard.ZstdCompressor()
    assert (
        _inflate("zstd", z.compress(b"a" * 10) + z.compress(b"b" * 10), 5) == b"a" * 10 + b"b" * 10
    )


def test_output_is_bounded_for_highly_compressible_input() -> None:
    zeros = gzip.compress(bytes(64 << 20), compresslevel=9)
    d = decompressor("gzip")
    sizes = [len(p) for p in d.feed(zeros)]
    list(d.finish())
    assert max(sizes) <= MAX_CHUNK
    assert sum(sizes) == 64 << 20


def test_truncated_streams_fail_as_integrity_errors() -> None:
    data = random.Random(1).randbytes(100000)
    gz = gzip.compress(data)
    with pytest.raises(IntegrityError, match="blob x: gzip stream ends early"):
        _inflate("gzip", gz[:-100])
    zs = zstandard.ZstdCompressor().compress(data)
    with pytest.raises(IntegrityError, match="zstd stream ends early"):
        _inflate("zstd", zs[: len(zs) // 2])
    with pytest.raises(IntegrityError, match="gzip stream ends early"):
        _inflate("gzip", b"")


def test_corrupt_gzip_fails_as_integrity_error() -> None:
    gz = bytearray(gzip.compress(random.Random(2).randbytes(50000)))
    gz[3] = 0xFF  # reserved flag bits set: invalid header
    with pytest.raises(IntegrityError, match="corrupt gzip"):
        _inflate("gzip", bytes(gz))


def test_unknown_kind() -> None:
    with pytest.raises(UnsupportedError):
        decompressor("lz4")  # type: ignore[arg-type]
