"""The pull's Downloading throttle (xfer-spec §5.6) and its message lines."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as hs

from lorry.ops._pull_progress import (
    digest_line,
    downloading,
    pulling_from,
    status_line,
)
from lorry.progress import STEP, ByteThrottle


def reported(total: int | None, chunks: list[int], start: int = 0) -> list[int]:
    throttle = ByteThrottle(total, start)
    pos, out = start, []
    for n in chunks:
        pos += n
        if throttle.due(pos):
            out.append(pos)
    return out


def test_step_is_512k_or_one_percent_whichever_is_smaller() -> None:
    assert ByteThrottle(None).step == STEP == 512 * 1024
    assert ByteThrottle(1000 * STEP).step == STEP
    assert ByteThrottle(10_000).step == 100
    assert ByteThrottle(50).step == 1


def test_small_chunks_are_batched_and_the_end_is_always_reported() -> None:
    total = 10_000  # step 100
    assert reported(total, [30] * 10 + [9_700]) == [120, 240, 10_000]


def test_unknown_total_reports_every_step() -> None:
    assert reported(None, [STEP // 2] * 4) == [STEP, 2 * STEP]


def test_resume_counts_from_the_resumed_offset() -> None:
    assert reported(10_000, [50, 60], start=5_000) == [5_110]


@given(total=hs.integers(1, 10**9), chunks=hs.lists(hs.integers(1, 4 << 20), max_size=50))
def test_reports_are_increasing_spaced_and_final(total: int, chunks: list[int]) -> None:
    got = reported(total, chunks)
    step = ByteThrottle(total).step
    assert got == sorted(set(got))
    assert all(b - a >= step or b >= total for a, b in zip([0, *got], got, strict=False))
    if sum(chunks) >= total:
        assert got and got[-1] >= total


def test_message_lines() -> None:
    head = pulling_from("latest", "library/busybox")
    assert (head.id, head.status, head.is_message) == (
        "latest",
        "Pulling from library/busybox",
        True,
    )
    assert digest_line("sha256:ab").status == "Digest: sha256:ab"
    assert status_line(True, "busybox:latest").status == (
        "Status: Downloaded newer image for busybox:latest"
    )
    assert status_line(False, "x:1").status == "Status: Image is up to date for x:1"
    ev = downloading("abc", 5, 10)
    assert (ev.status, ev.current, ev.total, ev.is_message) == ("Downloading", 5, 10, False)
