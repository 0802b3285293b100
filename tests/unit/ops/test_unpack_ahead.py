"""``OpenedAhead``: each item opened one ahead of its consumer, never more, nothing leaked."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from ops_helpers import wait_for

from lorry.errors import InvalidInputError
from lorry.ops.unpack_ahead import OpenedAhead


class _Opened:
    """What ``open_one`` made of an item, and whether it was closed."""

    def __init__(self, item: int) -> None:
        self.item = item
        self.closed = False


class _Log:
    def __init__(self) -> None:
        self.opened: list[_Opened] = []
        self.lock = threading.Lock()

    def open(self, item: int) -> _Opened:
        if item < 0:
            raise InvalidInputError(f"item {item} cannot be opened")
        got = _Opened(item)
        with self.lock:
            self.opened.append(got)
        return got

    @staticmethod
    def close(opened: _Opened) -> None:
        opened.closed = True


def test_items_come_in_order_each_opened_at_most_one_ahead() -> None:
    log = _Log()
    ahead = OpenedAhead(range(6), log.open, log.close)
    seen = []
    try:
        for item, opened in ahead:
            assert opened.item == item
            time.sleep(0.02)  # the walk has time to run ahead, if it would
            assert len(log.opened) <= item + 2  # this one and at most the next
            seen.append(item)
    finally:
        ahead.close()
    assert seen == list(range(6))


def test_an_error_comes_in_order_after_the_items_before_it() -> None:
    log = _Log()
    ahead = OpenedAhead([0, 1, -1, 3], log.open, log.close)
    seen = []
    with pytest.raises(InvalidInputError, match="item -1"):
        for item, _ in ahead:
            seen.append(item)
    ahead.close()
    assert seen == [0, 1]
    assert [o.item for o in log.opened] == [0, 1]  # nothing after the error is opened


def test_close_closes_what_was_opened_and_not_handed_out() -> None:
    log = _Log()
    ahead = OpenedAhead(range(10), log.open, log.close)
    for item, _ in ahead:
        if item == 2:
            wait_for(lambda: len(log.opened) == 4)  # 3 is opened meanwhile
            break
    ahead.close()
    time.sleep(0.05)
    assert [o.item for o in log.opened] == [0, 1, 2, 3]
    assert [o.closed for o in log.opened] == [False, False, False, True]


def test_close_does_not_wait_for_a_walk_that_waits_for_its_next_item() -> None:
    log = _Log()
    release = threading.Event()

    def slow() -> Iterator[int]:
        yield 0
        release.wait(10)  # an unpack's copy that has not delivered the next layer
        yield 1

    ahead = OpenedAhead(slow(), log.open, log.close)
    it = iter(ahead)
    assert next(it)[0] == 0
    started = time.monotonic()
    ahead.close()
    assert time.monotonic() - started < 5  # would be 10 s if close joined the walk
    release.set()  # the walk wakes, sees the close and opens nothing more for anyone
    time.sleep(0.1)
    assert [o.item for o in log.opened if not o.closed] == [0]  # 0 was handed out
