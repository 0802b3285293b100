"""BlobFetch, the one byte path: reconnects at the exact offset, gives up without progress."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing

import pytest

from lorry.errors import CancelledError, UnavailableError
from lorry.ops.blob_stream import MAX_RECONNECTS, BlobFetch

DATA = bytes(range(256)) * 40  # 10 KiB


class FakeStream:
    """A source stream over DATA from ``offset`` that is cut after ``cut_after`` bytes."""

    def __init__(self, offset: int, cut_after: int | None) -> None:
        self.offset = offset
        self.cut_after = cut_after
        self.closed = False
        self.aborted = False
        self.size = len(DATA)

    def __iter__(self) -> Iterator[bytes]:
        pos, sent = self.offset, 0
        while pos < len(DATA):
            if self.aborted:
                raise UnavailableError("stream aborted")
            if self.cut_after is not None and sent >= self.cut_after:
                raise UnavailableError("connection reset")
            chunk = DATA[pos : pos + 1000]
            pos += len(chunk)
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True


class Opener:
    """Opens FakeStreams; ``cuts`` gives each successive stream's cut point."""

    def __init__(self, *cuts: int | None) -> None:
        self.cuts = list(cuts)
        self.offsets: list[int] = []
        self.streams: list[FakeStream] = []

    def __call__(self, offset: int) -> FakeStream:
        self.offsets.append(offset)
        cut = self.cuts.pop(0) if self.cuts else None
        stream = FakeStream(offset, cut)
        self.streams.append(stream)
        return stream


def test_a_cut_stream_is_reopened_at_the_exact_offset_and_the_bytes_are_whole() -> None:
    opener = Opener(3000, 2000)
    fetch = BlobFetch(opener)
    assert b"".join(fetch.chunks(1000)) == DATA[1000:]
    assert opener.offsets == [1000, 4000, 6000]
    assert fetch.reconnects == 2 and fetch.size == len(DATA)
    assert all(s.closed for s in opener.streams)


def test_a_stream_cut_before_any_byte_goes_back_to_the_retry_policy() -> None:
    fetch = BlobFetch(Opener(0))
    with pytest.raises(UnavailableError):
        b"".join(fetch.chunks())


def test_reconnects_stop_after_the_limit() -> None:
    opener = Opener(*([1000] * (MAX_RECONNECTS + 1)))
    with pytest.raises(UnavailableError):
        b"".join(BlobFetch(opener).chunks())
    assert len(opener.offsets) == MAX_RECONNECTS + 1


def test_the_check_runs_before_every_chunk_and_closes_the_stream_when_it_raises() -> None:
    seen = 0

    def check() -> None:
        nonlocal seen
        seen += 1
        if seen == 3:
            raise CancelledError("cancelled")

    opener = Opener()
    fetch = BlobFetch(opener, check=check)
    got = []
    with pytest.raises(CancelledError), closing(fetch.chunks()) as chunks:
        got.extend(chunks)
    assert len(got) == 2 and opener.streams[0].closed


def test_abort_cuts_the_open_stream_and_every_later_one() -> None:
    opener = Opener()
    fetch = BlobFetch(opener)
    chunks = fetch.chunks()
    next(chunks)
    fetch.abort()
    with pytest.raises(UnavailableError):
        list(chunks)
    assert opener.streams[0].aborted and len(opener.streams) == 1  # no reconnect after abort
    with pytest.raises(UnavailableError):
        list(fetch.chunks())
    assert opener.streams[-1].aborted
