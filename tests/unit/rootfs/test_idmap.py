"""--uid-map/--gid-map: ranges parsed as umoci spells them, IDs shifted, unmapped ones refused."""

from __future__ import annotations

import pytest

from lorry.errors import InvalidInputError
from lorry.rootfs.idmap import IdMap, IdRange, parse_ranges


def test_ranges_shift_ids_and_refuse_the_rest() -> None:
    ids = IdMap(parse_ranges(["0:100000:1000", "5000:200000:10"], "--uid-map"), ())
    assert ids.uids == (IdRange(0, 100000, 1000), IdRange(5000, 200000, 10))
    assert ids.uid(0, "e") == 100000 and ids.uid(999, "e") == 100999
    assert ids.uid(5009, "e") == 200009
    with pytest.raises(
        InvalidInputError, match="layer x: entry 'f': uid 1000 is outside --uid-map"
    ):
        ids.uid(1000, "layer x: entry 'f'")
    assert ids.gid(4242, "e") == 4242  # no gid ranges: as the layer says


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0:100000", "want CONTAINER:HOST:SIZE"),
        ("a:b:c", "want CONTAINER:HOST:SIZE"),
        ("0:1:0", "size >= 1"),
        ("-1:1:5", "size >= 1"),
        ("0:4294967295:2", "32-bit"),
    ],
)
def test_bad_ranges_name_the_flag(text: str, why: str) -> None:
    with pytest.raises(InvalidInputError, match=why) as info:
        parse_ranges([text], "--gid-map")
    assert str(info.value).startswith(f"--gid-map {text!r}")


def test_overlapping_ranges_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="overlaps 0:100000"):
        parse_ranges(["0:100000:10", "5:300000:10"], "--uid-map")
