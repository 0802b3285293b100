"""Tests of lorry.streams: the DiffID computed in the same pass as the write."""

from __future__ import annotations

import gzip
import random

import pytest
import zstandard

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError
from lorry.streams import DiffIDTap, compression_for

TAR = random.Random(3).randbytes(300_000) + bytes(200_000)


def _tap(kind: str, blob: bytes, step: int = 4096) -> DiffIDTap:
    tap = DiffIDTap(kind, "blob x")  # type: ignore[arg-type]
    for i in range(0, len(blob), step):
        tap.update(blob[i : i + step])
    return tap


@pytest.mark.parametrize(
    ("kind", "blob"),
    [
        ("gzip", gzip.compress(TAR)),
        ("zstd", zstandard.ZstdCompressor().compress(TAR)),
        ("none", TAR),
    ],
)
def test_diff_id_is_the_digest_of_the_uncompressed_tar(kind: str, blob: bytes) -> None:
    assert _tap(kind, blob).finish() == (Digest.of(TAR), len(TAR))


def test_cut_stream_fails_at_finish_naming_the_blob() -> None:
    tap = _tap("gzip", gzip.compress(TAR)[:-50])
    with pytest.raises(IntegrityError, match="blob x"):
        tap.finish()


def test_compression_for_media_types() -> None:
    assert compression_for(mt.DOCKER_LAYER_GZIP) == "gzip"
    assert compression_for(mt.OCI_LAYER_ZSTD) == "zstd"
    assert compression_for(mt.OCI_LAYER) == "none"
    assert compression_for(mt.OCI_CONFIG) is None
    assert compression_for(None) is None
