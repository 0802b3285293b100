"""Tests of lorry.platform against containerd/platforms' test tables (in data/platform)."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lorry.errors import InvalidInputError
from lorry.platform import (
    Matcher,
    Platform,
    best_match,
    host_platform,
    matches,
    normalize_arch,
    ranked,
)

DATA = Path(__file__).parent / "data" / "platform"
PARSE = json.loads((DATA / "parse.json").read_text())
COMPARE = json.loads((DATA / "compare.json").read_text())
NORMALIZE = json.loads((DATA / "normalize.json").read_text())

#: Injected hosts for containerd's host-dependent rows: an arm/v6 host exercises defaultVariant.
HOSTS = [
    Platform("linux", "amd64", "v3"),
    Platform("linux", "arm", "v6"),
    Platform("linux", "arm", "v7"),
    Platform("darwin", "arm64"),
]


def _subst(value: Any, host: Platform) -> Any:
    """Replace $os/$arch/$variant by the injected host's values, as containerd's test does."""
    variant = host.variant if host.architecture == "arm" and host.variant != "v7" else ""
    if isinstance(value, str):
        out = value.replace("$os", host.os).replace("$arch", host.architecture)
        out = out.replace("$variant", variant or "")
        return out.rstrip("/")
    if isinstance(value, list):
        return [_subst(v, host) for v in value]
    return {k: _subst(v, host) for k, v in value.items()}


def _ids(rows: list[dict[str, Any]], key: str) -> list[str]:
    return [str(r[key]) for r in rows]


@pytest.mark.parametrize("host", HOSTS, ids=str)
@pytest.mark.parametrize("row", PARSE["parse"], ids=_ids(PARSE["parse"], "input"))
def test_parse_selector(row: dict[str, Any], host: Platform) -> None:
    row = _subst(row, host)
    got = Platform.parse(row["input"], host=host, normalize=False)
    assert got == Platform.from_dict(row["expected"])
    if "format_all" in row:
        assert got.format_all() == row["format_all"]
        again = Platform.parse(got.format_all(), host=host, normalize=False)
        assert again.format_all() == got.format_all()
    else:
        assert str(got) == row["formatted"]
        assert str(Platform.parse(str(got), host=host, normalize=False)) == str(got)
    for candidate in [row["expected"], *row.get("matches", [])]:
        assert matches(got, Platform.from_dict(candidate), strict=True), candidate
    normalized = Platform.parse(row["input"], host=host)
    assert normalized == got.normalize()
    if "normalized" in row:
        assert str(normalized) == row["normalized"]


@pytest.mark.parametrize(
    "row", PARSE["parse_normalized"], ids=_ids(PARSE["parse_normalized"], "input")
)
def test_parse_normalizes(row: dict[str, Any]) -> None:
    assert str(Platform.parse(row["input"], host=HOSTS[0])) == row["normalized"]


@pytest.mark.parametrize("text", PARSE["invalid"])
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidInputError, match="invalid platform"):
        Platform.parse(text, host=HOSTS[0])


@pytest.mark.parametrize(
    "row", PARSE["format_all_encoding"], ids=_ids(PARSE["format_all_encoding"], "expected")
)
def test_format_all_encoding(row: dict[str, Any]) -> None:
    p = Platform.from_dict(row["platform"])
    assert p.format_all() == row["expected"]
    back = Platform.parse(row["expected"], host=HOSTS[0], normalize=False)
    assert (back.os_version, back.os_features) == (p.os_version, p.os_features)


def test_format_all_skips_empty_features() -> None:
    p = Platform("linux", "amd64", os_features=("", "gpu", "", "simd"))
    assert p.format_all() == "linux(+gpu+simd)/amd64"


@pytest.mark.parametrize("strict", [False, True], ids=["Only", "OnlyStrict"])
def test_compare_tables(strict: bool) -> None:
    failures = []
    for row in COMPARE["only_strict" if strict else "only"]:
        wanted = Platform.parse(row["platform"], host=HOSTS[0], normalize=False)
        for should, names in ((True, row["match"]), (False, row["no_match"])):
            for name in names:
                cand = Platform.parse(name, host=HOSTS[0], normalize=False)
                if matches(wanted, cand, strict=strict) is not should:
                    failures.append((row["platform"], name, should))
    assert failures == []


@pytest.mark.parametrize("row", COMPARE["ordering"], ids=_ids(COMPARE["ordering"], "wanted"))
def test_ordering(row: dict[str, Any]) -> None:
    wanted = Platform.parse(row["wanted"])
    cands = [Platform.parse(c, normalize=False) for c in row["candidates"]]
    order = ranked(wanted, cands, strict=row.get("strict", False))
    assert [str(cands[i].normalize()) for i in order] == row["expected"]
    m = Matcher.only_strict(wanted) if row.get("strict") else Matcher.only(wanted)
    for a, b in itertools.pairwise(order):
        assert not m.less(cands[b], cands[a])


@pytest.mark.parametrize("row", NORMALIZE["arch"], ids=lambda r: "/".join(r[:2]))
def test_normalize_arch(row: list[str]) -> None:
    assert normalize_arch(row[0], row[1]) == (row[2], row[3])


@pytest.mark.parametrize("row", NORMALIZE["os"], ids=lambda r: r[0])
def test_normalize_os(row: list[str]) -> None:
    assert Platform(row[0], "amd64").normalize().os == row[1]


@pytest.mark.parametrize("row", NORMALIZE["host"], ids=lambda r: f"{r['system']}-{r['machine']}")
def test_host_platform(row: dict[str, str]) -> None:
    assert str(host_platform(row["system"], row["machine"], row["cpuinfo"])) == row["expected"]


def test_host_is_normalised_and_parse_fills_from_it() -> None:
    host = Platform.host()
    assert host == host.normalize()
    assert Platform.parse("linux").architecture == host.architecture
    assert Platform.parse("s390x").os == host.os


def test_brief_examples() -> None:
    assert str(Platform.parse("linux/x86_64")) == "linux/amd64"
    assert str(Platform.parse("linux/armhf")) == "linux/arm/v7"
    assert str(Platform.parse("linux/arm")) == "linux/arm/v7"
    assert str(Platform.parse("linux/arm64/v8")) == "linux/arm64"
    assert Platform.parse("linux/arm64/v8").variant is None
    assert str(Platform.parse("macos/arm64")) == "darwin/arm64"


def test_dict_round_trip_and_validation() -> None:
    d = {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.1",
         "os.features": ["win32k"], "variant": "v2"}  # fmt: skip
    p = Platform.from_dict(d)
    assert p.to_dict() == d
    assert (
        Platform.from_dict({"os": "linux", "architecture": "arm64", "variant": ""}).variant is None
    )
    bad: Any
    for bad in ({"os": "linux"}, {"architecture": "amd64"}, {"os": 1, "architecture": "x"},
                {"os": "linux", "architecture": "amd64", "os.features": "gpu"}, []):  # fmt: skip
        with pytest.raises(InvalidInputError, match="platform"):
            Platform.from_dict(bad)


def test_best_match_prefers_exact_then_compatible_then_unplatformed() -> None:
    arm64 = Platform.parse("linux/arm64")
    cands: list[Platform | None] = [
        None,
        Platform.parse("linux/arm/v7"),
        Platform.parse("linux/amd64"),
        Platform.parse("linux/arm64/v8", normalize=False),
    ]
    assert best_match(arm64, cands) == 3
    assert ranked(arm64, cands) == [3, 1, 0]
    assert best_match(arm64, cands[:3]) == 1
    assert best_match(arm64, cands[:3], strict=True) == 0
    assert best_match(arm64, [Platform.parse("linux/amd64")]) is None


def test_windows_os_version_matching() -> None:
    host = Platform("windows", "amd64", os_version="10.0.20348.1")
    assert matches(host, Platform("windows", "amd64", os_version="10.0.20348.2113"))
    assert not matches(host, Platform("windows", "amd64", os_version="10.0.17763.1"))
    old = Platform("windows", "amd64", os_version="10.0.17763.5")
    assert matches(old, Platform("windows", "amd64", os_version="10.0.17763.1"))
    assert not matches(old, Platform("windows", "amd64", os_version="10.0.20348.1"))


def test_os_features_subset() -> None:
    wanted = Platform("linux", "amd64", os_features=("gpu", "simd"))
    assert matches(wanted, Platform("linux", "amd64", os_features=("gpu",)))
    assert not matches(Platform("linux", "amd64"), Platform("linux", "amd64", os_features=("gpu",)))


_PART = st.text(alphabet="abcdefxyz0123456789_-.", min_size=1, max_size=8)


@given(st.lists(_PART, min_size=2, max_size=3).map("/".join))
def test_parse_round_trips(text: str) -> None:
    try:
        p = Platform.parse(text, host=HOSTS[0])
    except InvalidInputError:
        return
    assert Platform.parse(str(p), host=HOSTS[0]) == p
