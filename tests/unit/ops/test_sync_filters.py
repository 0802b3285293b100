"""Tag filters (semver ranges, latest N, regexes), referrer tags, shards and the blob ledger."""

from __future__ import annotations

import re
import threading

import pytest

from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.ops.sync.filters import NameFilter, TagFilter, referrer_tags
from lorry.ops.sync.ledger import BlobLedger
from lorry.ops.sync.plan import Shard, shard_of
from lorry.ops.sync.semver import parse_range, parse_version

TAGS = ["1.0.0", "v1.2", "1.2.5", "1.3.0-rc.1", "1.10.0", "2.0.0", "0.2.3", "0.3.0", "latest"]


@pytest.mark.parametrize(
    ("spec", "kept"),
    [
        (">=1.2 <2", ["v1.2", "1.2.5", "1.10.0"]),
        ("^1.2", ["v1.2", "1.2.5", "1.10.0"]),
        ("~1.2", ["v1.2", "1.2.5"]),
        ("^0.2.3", ["0.2.3"]),
        ("1.x", ["1.0.0", "v1.2", "1.2.5", "1.10.0"]),
        ("1.2", ["v1.2", "1.2.5"]),
        ("<1 || >=2", ["2.0.0", "0.2.3", "0.3.0"]),
        ("*", ["1.0.0", "v1.2", "1.2.5", "1.10.0", "2.0.0", "0.2.3", "0.3.0"]),
        (">= 1.2.5, != 1.10.0", ["1.2.5", "2.0.0"]),
    ],
)
def test_semver_ranges(spec: str, kept: list[str]) -> None:
    assert TagFilter(semver=parse_range(spec)).apply(TAGS) == kept


@pytest.mark.parametrize("bad", [">=", "1.2.x.4", ">=1.0-rc1", "a || b", "||"])
def test_bad_ranges_name_the_part(bad: str) -> None:
    with pytest.raises(InvalidInputError, match="semver range"):
        parse_range(bad)


def test_latest_n_by_semver_newest_first_prereleases_left_out() -> None:
    assert TagFilter(latest=3).apply(TAGS) == ["2.0.0", "1.10.0", "1.2.5"]
    assert parse_version("1.3.0-rc.1") < parse_version("1.3.0")  # type: ignore[operator]
    assert parse_version("1.3.0-alpha") < parse_version("1.3.0-alpha.1")  # type: ignore[operator]


def test_regex_allow_and_deny_are_searched_and_names_win_over_listing() -> None:
    f = TagFilter(regexes=NameFilter((re.compile(r"^1\."),), (re.compile("rc"),)))
    assert f.apply(TAGS) == ["1.0.0", "1.2.5", "1.10.0"]
    assert TagFilter(names=("x", "1.0.0")).apply(TAGS) == ["x", "1.0.0"]
    assert not TagFilter(names=("x",)).needs_listing and TagFilter().needs_listing


def test_referrer_tags_are_never_chosen_by_filters_but_come_with_their_subject() -> None:
    d = Digest.of(b"image")
    sig, idx = f"sha256-{d.encoded}.sig", f"sha256-{d.encoded}"
    other = f"sha256-{Digest.of(b'other').encoded}.att"
    listed = ["1.0", sig, idx, other]
    assert TagFilter().apply(listed) == ["1.0"]
    assert referrer_tags(listed, [d]) == [sig, idx]


def test_shards_are_stable_and_partition_the_keys() -> None:
    keys = [f"r.example/repo{i}:{t}" for i in range(40) for t in ("1", "2", "3")]
    owners = {k: [i for i in range(3) if shard_of(k, 3) == i] for k in keys}
    assert all(len(v) == 1 for v in owners.values())
    assert {v[0] for v in owners.values()} == {0, 1, 2}
    assert (shard_of("r.example/a:1", 7), shard_of("r.example/b:2", 7)) == (0, 1)  # fixed forever
    assert Shard.parse("2/3") == Shard(2, 3)
    for bad in ("3/3", "x/2", "1", "-1/2", "0/0"):
        with pytest.raises(InvalidInputError, match="--shard"):
            Shard.parse(bad)


def test_ledger_makes_the_second_mover_wait_then_mount() -> None:
    ledger = BlobLedger()
    key = ("m.example", Digest.of(b"layer"))
    assert ledger.claim(key) == (True, None)
    claimed, event = ledger.claim(key)
    assert not claimed and event is not None and not event.is_set()
    seen: list[list[str]] = []

    def second() -> None:
        assert event is not None
        event.wait(5)
        assert ledger.claim(key) == (False, None)  # someone holds it: go and mount
        seen.append(ledger.holders(key))

    t = threading.Thread(target=second)
    t.start()
    ledger.add(key, "mirror/a")
    ledger.release(key)
    t.join(5)
    assert seen == [["mirror/a"]]
    ledger.drop(key, "mirror/a")
    assert ledger.claim(key) == (True, None)  # nobody holds it any more
