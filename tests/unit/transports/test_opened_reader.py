"""OpenedReader, the verified upload body over a source blob: whole chunks, splits, seeks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError
from lorry.oci import Descriptor
from lorry.transports.registry import OpenedReader

DATA = bytes(range(256)) * 40  # 10 KiB in 1,000-byte source chunks


def _opener(data: bytes, opened: list[int]) -> object:
    def open_at(offset: int) -> Iterator[bytes]:
        opened.append(offset)
        for at in range(offset, len(data), 1000):
            yield data[at : at + 1000]

    return open_at


def _desc(data: bytes = DATA) -> Descriptor:
    return Descriptor(mt.OCI_LAYER_GZIP, Digest.of(data), len(data))


def test_whole_chunks_pass_through_and_small_reads_split_them() -> None:
    opened: list[int] = []
    reader = OpenedReader(_desc(), _opener(DATA, opened))  # type: ignore[arg-type]
    got = [reader.read(4096)]  # one source chunk at most
    assert got == [DATA[:1000]]
    got += [reader.read(300), reader.read(300), reader.read(1000)]
    assert got[1:] == [DATA[1000:1300], DATA[1300:1600], DATA[1600:2000]]
    rest = reader.read(-1)
    assert b"".join(got) + rest == DATA and reader.read(10) == b""
    assert reader.tell() == len(DATA) and opened == [0]


def test_the_last_byte_is_never_handed_over_when_the_digest_is_wrong() -> None:
    bad = DATA[:-1] + b"x"
    reader = OpenedReader(_desc(), _opener(bad, []))  # type: ignore[arg-type]
    handed = b""
    with pytest.raises(IntegrityError):
        while chunk := reader.read(1000):
            handed += chunk
    assert len(handed) < len(DATA)


def test_seek_hashes_what_it_skips() -> None:
    """Back: reopen at 0; forward: read on. The source is never opened mid-blob, so a resent or
    resumed tail is still verified against the whole blob's digest."""
    opened: list[int] = []
    reader = OpenedReader(_desc(), _opener(DATA, opened))  # type: ignore[arg-type]
    reader.read(1000)
    assert reader.seek(0) == 0 and reader.read(-1) == DATA
    reader.seek(5000)
    assert reader.read(-1) == DATA[5000:] and opened == [0, 0, 0]
    reader.seek(1000)
    reader.seek(3000)  # forward: no reopen
    assert reader.read(-1) == DATA[3000:] and opened == [0, 0, 0, 0]


def test_a_bad_byte_before_the_seek_offset_still_fails_the_blob() -> None:
    bad = b"x" + DATA[1:]
    reader = OpenedReader(_desc(), _opener(bad, []))  # type: ignore[arg-type]
    reader.seek(5000)
    with pytest.raises(IntegrityError):
        while reader.read(1000):
            pass
