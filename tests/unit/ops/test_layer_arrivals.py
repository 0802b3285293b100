"""``LayerArrivals``: the layers a copy announces, handed to the unpack bottom→top (issue 12)."""

from __future__ import annotations

import threading
import time

import pytest
from ops_helpers import wait_for

from lorry.digest import ChainID, DiffID, Digest, chain_id
from lorry.errors import LorryError, StoreError
from lorry.ops.unpack_stream import LayerArrivals
from lorry.store.layers import Layer


def _chain(n: int, seed: str = "a") -> list[Layer]:
    """``n`` layers, each on the one before."""
    diffs = [DiffID(Digest.of(f"{seed}{i}".encode())) for i in range(n)]
    out: list[Layer] = []
    parent: ChainID | None = None
    for i in range(n):
        cid = chain_id(diffs[: i + 1])
        blob = Digest.of(f"blob{seed}{i}".encode())
        out.append(Layer(cid, diffs[i], blob, "application/x", parent, 10, 5, 1))
        parent = cid
    return out


def _reader(arrivals: LayerArrivals, got: list[Layer], errors: list[BaseException]) -> None:
    try:
        for layer in arrivals.layers():
            got.append(layer)
    except BaseException as exc:
        errors.append(exc)


def _start(arrivals: LayerArrivals) -> tuple[threading.Thread, list[Layer], list[BaseException]]:
    got: list[Layer] = []
    errors: list[BaseException] = []
    thread = threading.Thread(target=_reader, args=(arrivals, got, errors), daemon=True)
    thread.start()
    return thread, got, errors


def test_layers_come_bottom_to_top_whatever_order_they_are_announced_in() -> None:
    chain = _chain(4)
    arrivals = LayerArrivals()
    thread, got, errors = _start(arrivals)
    arrivals.announce(chain[2])
    arrivals.announce(chain[1])
    time.sleep(0.05)
    assert got == []  # nothing without the bottom layer
    arrivals.announce(chain[0])
    wait_for(lambda: len(got) == 3)
    assert got == chain[:3]
    arrivals.finish(Digest.of(b"config"), chain)  # the top comes from the committed chain
    thread.join(5)
    assert not thread.is_alive() and not errors
    assert got == chain
    assert arrivals.image_id == Digest.of(b"config")


def test_an_image_already_in_the_store_is_applied_from_the_committed_chain() -> None:
    chain = _chain(3)
    arrivals = LayerArrivals()
    arrivals.finish(Digest.of(b"config"), chain)
    assert list(arrivals.layers()) == chain


def test_a_failed_copy_wakes_the_waiting_reader() -> None:
    chain = _chain(2)
    arrivals = LayerArrivals()
    thread, got, errors = _start(arrivals)
    arrivals.announce(chain[0])
    wait_for(lambda: len(got) == 1)
    arrivals.fail()
    thread.join(5)
    assert not thread.is_alive()
    assert got == chain[:1]
    (error,) = errors
    assert isinstance(error, LorryError)


def test_a_committed_chain_that_is_not_what_was_applied_is_an_internal_error() -> None:
    arrivals = LayerArrivals()
    thread, got, errors = _start(arrivals)
    arrivals.announce(_chain(1, "x")[0])
    wait_for(lambda: len(got) == 1)
    arrivals.finish(Digest.of(b"config"), _chain(2, "y"))
    thread.join(5)
    (error,) = errors
    assert isinstance(error, StoreError) and "internal error" in str(error)


@pytest.mark.parametrize("n", [0, 1])
def test_short_chains(n: int) -> None:
    chain = _chain(n)
    arrivals = LayerArrivals()
    for layer in chain:
        arrivals.announce(layer)
    arrivals.finish(Digest.of(b"config"), chain)
    assert list(arrivals.layers()) == chain
