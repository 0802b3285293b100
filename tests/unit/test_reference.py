"""Tests of lorry.reference: distribution/reference's own tables, Docker's quirks, round trips.

The tables in ``data/reference/*.json`` are ported from distribution/reference's Go tests (each
file's ``_source`` says which file and commit); every row runs here. Go error sentinels map to
the rule text lorry's messages carry (``go_errors.json``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from lorry import _reference_grammar as g
from lorry import reference as r
from lorry.digest import Digest
from lorry.errors import InvalidInputError, InvalidReference
from lorry.reference import Reference, familiar_match, parse

DATA = Path(__file__).parent / "data" / "reference"


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return data


REF = _load("reference_test")
NORM = _load("normalize_test")
RX = _load("regexp_test")
ERRORS = _load("go_errors")
SHA = "sha256:" + "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _ids(rows: list[dict[str, Any]], key: str = "input") -> list[str]:
    return [str(row.get(key, ""))[:60] for row in rows]


def _raises(go_error: str, call: Any, text: str) -> None:
    """``call(text)`` raises InvalidReference naming ``text`` and the rule of ``go_error``."""
    with pytest.raises(InvalidReference) as info:
        call(text)
    assert ERRORS[go_error] in str(info.value)
    assert f'"{text}"' in str(info.value)


# --- reference_test.go ------------------------------------------------------------------------


@pytest.mark.parametrize("row", REF["TestReferenceParse"], ids=_ids(REF["TestReferenceParse"]))
def test_go_reference_parse(row: dict[str, Any]) -> None:
    text = row["input"]
    if "err" in row:
        _raises(row["err"], g.parse_parts, text)
        return
    parts = g.parse_parts(text)
    assert str(parts) == text
    assert (f"{parts.domain}/{parts.path}" if parts.domain else parts.path) == row["repository"]
    assert parts.domain == row.get("domain", "")
    assert parts.tag == row.get("tag")
    assert parts.digest == row.get("digest")


@pytest.mark.parametrize("row", REF["TestWithNameFailure"], ids=_ids(REF["TestWithNameFailure"]))
def test_go_with_name_failure(row: dict[str, Any]) -> None:
    _raises(row["err"], r.split_hostname, row["input"])


@pytest.mark.parametrize("row", REF["TestDomainAndPath"], ids=_ids(REF["TestDomainAndPath"]))
def test_go_domain_and_path(row: dict[str, Any]) -> None:
    assert r.split_hostname(row["input"]) == (row["domain"], row["path"])


@pytest.mark.parametrize("row", REF["TestSerialization"], ids=_ids(REF["TestSerialization"]))
def test_go_serialization(row: dict[str, Any]) -> None:
    if "err" in row:
        _raises(row["err"], g.parse_parts, row["input"])
        return
    parts = g.parse_parts(row["input"])
    assert (f"{parts.domain}/{parts.path}", parts.tag, parts.digest) == (
        row["name"],
        row.get("tag"),
        row.get("digest"),
    )
    assert str(parts) == row["input"]


def _full_length(digest: str) -> str:
    """Go's table uses 39-hex "sha256" digests, which only its regexp accepts; pad to 64."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart.ljust(64, '0')}"


@pytest.mark.parametrize("row", REF["TestWithTag"], ids=_ids(REF["TestWithTag"], "combined"))
def test_go_with_tag(row: dict[str, Any]) -> None:
    ref, combined = parse(row["name"]), row["combined"]
    if "digest" in row:
        # Deliberate: lorry's References hold only verifiable digests, so Go's short one is
        # refused; the same row with a full-length digest must combine exactly as in Go.
        with pytest.raises(InvalidReference, match="invalid checksum digest length"):
            ref.with_digest(row["digest"])
        ref = ref.with_digest(_full_length(row["digest"]))
        combined = combined.replace(row["digest"], _full_length(row["digest"]))
    assert ref.with_tag(row["tag"]).familiar == combined


@pytest.mark.parametrize("row", REF["TestWithDigest"], ids=_ids(REF["TestWithDigest"], "combined"))
def test_go_with_digest(row: dict[str, Any]) -> None:
    ref = parse(row["name"])
    if "tag" in row:
        ref = ref.with_tag(row["tag"])
    with pytest.raises(InvalidReference, match="invalid checksum digest length"):
        ref.with_digest(row["digest"])  # deliberate, as in test_go_with_tag
    full = _full_length(row["digest"])
    assert ref.with_digest(full).familiar == row["combined"].replace(row["digest"], full)


@pytest.mark.parametrize("row", REF["TestParseNamed"], ids=_ids(REF["TestParseNamed"]))
def test_go_parse_named(row: dict[str, Any]) -> None:
    if "err" in row:
        _raises(row["err"], r.parse_canonical, row["input"])
        return
    ref = r.parse_canonical(row["input"])
    assert (ref.domain, ref.path) == (row["domain"], row["path"])


# --- normalize_test.go ------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["TestValidateReferenceName", "TestValidateRemoteName"])
def test_go_validate_names(table: str) -> None:
    for text in NORM[table]["valid"]:
        parse(text)
    for text in NORM[table]["invalid"]:
        with pytest.raises(InvalidReference, match=re.escape(f'"{text}"')):
            parse(text)


@pytest.mark.parametrize(
    "row", NORM["TestParseRepositoryInfo"], ids=_ids(NORM["TestParseRepositoryInfo"], "FullName")
)
def test_go_parse_repository_info(row: dict[str, str]) -> None:
    texts = [row["FamiliarName"], row["FullName"]] + (
        [row["AmbiguousName"]] if row["AmbiguousName"] else []
    )
    for text in texts:
        ref = parse(text)
        assert ref.familiar_name == row["FamiliarName"]
        assert str(ref) == row["FullName"]
        assert ref.registry == row["Domain"]
        assert ref.repository == row["RemoteName"]


def test_go_parse_reference_with_tag_and_digest() -> None:
    case = NORM["TestParseReferenceWithTagAndDigest"]
    ref = parse(case["input"])
    assert str(ref) == case["string"]
    assert ref.tag is not None and ref.digest is not None
    assert ref.familiar == case["input"]


def test_go_invalid_reference_components() -> None:
    case = NORM["TestInvalidReferenceComponents"]
    with pytest.raises(InvalidReference):
        parse(case["invalid_name"])
    ref = parse(case["name"])
    with pytest.raises(InvalidReference, match="invalid tag format"):
        ref.with_tag(case["invalid_tag"])
    with pytest.raises(InvalidReference, match="invalid digest format"):
        ref.with_digest(case["invalid_digest"])


@pytest.mark.parametrize(
    "row", NORM["TestParseAnyReference"], ids=_ids(NORM["TestParseAnyReference"], "Reference")
)
def test_go_parse_any_reference(row: dict[str, str]) -> None:
    got = r.parse_any(row["Reference"])
    assert str(got) == row["Equivalent"]
    if row.get("Expected") == "digest":
        assert got == Digest.parse(row["Equivalent"])
    else:
        assert isinstance(got, Reference)
        assert (got.registry, got.repository, got.tag, got.digest) == tuple(
            g.parse_parts(row["Equivalent"])
        )


@pytest.mark.parametrize(
    "row", NORM["TestNormalizedSplitHostname"], ids=_ids(NORM["TestNormalizedSplitHostname"])
)
def test_go_normalized_split_hostname(row: dict[str, str]) -> None:
    ref = parse(row["input"])
    assert (ref.registry, ref.repository) == (row["domain"], row["path"])


def test_go_match_error() -> None:
    case = NORM["TestMatchError"]
    ref = r.parse_any(case["reference"])
    assert isinstance(ref, Reference)
    with pytest.raises(InvalidInputError, match="syntax error in pattern"):
        familiar_match(case["pattern"], ref)


@pytest.mark.parametrize("row", NORM["TestMatch"], ids=_ids(NORM["TestMatch"], "reference"))
def test_go_match(row: dict[str, Any]) -> None:
    ref = r.parse_any(row["reference"])
    assert isinstance(ref, Reference)
    assert familiar_match(row["pattern"], ref) is row["expected"]


@pytest.mark.parametrize(
    "row", NORM["TestParseDockerRef"], ids=_ids(NORM["TestParseDockerRef"], "name")
)
def test_go_parse_docker_ref(row: dict[str, str]) -> None:
    assert str(r.parse_docker_ref(row["input"])) == row["expected"]
    g.parse_parts(row["expected"])


# --- regexp_test.go ---------------------------------------------------------------------------


def _check_regexp(pattern: re.Pattern[str], row: dict[str, Any]) -> None:
    found = pattern.match(row["input"])
    assert (found is not None) is row["match"]
    if found is not None:
        assert found.group(0) == row["input"]
        subs = ["" if s is None else s for s in found.groups()]
        assert subs[: len(row.get("subs", []))] == row.get("subs", [])


@pytest.mark.parametrize("row", RX["TestDomainRegexp"], ids=_ids(RX["TestDomainRegexp"]))
def test_go_domain_regexp(row: dict[str, Any]) -> None:
    _check_regexp(r.ANCHORED_DOMAIN_RE, row)
    assert (r.DOMAIN_RE.fullmatch(row["input"]) is not None) is row["match"]


@pytest.mark.parametrize("row", RX["TestFullNameRegexp"], ids=_ids(RX["TestFullNameRegexp"]))
def test_go_full_name_regexp(row: dict[str, Any]) -> None:
    assert r.ANCHORED_NAME_RE.groups == 2
    _check_regexp(r.ANCHORED_NAME_RE, row)
    assert (r.NAME_RE.fullmatch(row["input"]) is not None) is row["match"]


@pytest.mark.parametrize("row", RX["TestReferenceRegexp"], ids=_ids(RX["TestReferenceRegexp"]))
def test_go_reference_regexp(row: dict[str, Any]) -> None:
    assert r.REFERENCE_RE.groups == 3
    _check_regexp(r.REFERENCE_RE, row)


@pytest.mark.parametrize("row", RX["TestIdentifierRegexp"], ids=_ids(RX["TestIdentifierRegexp"]))
def test_go_identifier_regexp(row: dict[str, Any]) -> None:
    _check_regexp(r.ANCHORED_IDENTIFIER_RE, row)
    assert (r.IDENTIFIER_RE.fullmatch(row["input"]) is not None) is row["match"]


# --- Docker's quirks, as lorry's contract states them ------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", None),
        ("index.docker.io/foo", "docker.io", "library/foo", None),
        ("index.docker.io/library/foo:1", "docker.io", "library/foo", "1"),
        ("localhost:5000", "docker.io", "library/localhost", "5000"),
        ("localhost/foo", "localhost", "foo", None),
        ("localhost:5000/foo/bar:x", "localhost:5000", "foo/bar", "x"),
        ("Foo/bar", "Foo", "bar", None),
        ("example.com", "docker.io", "library/example.com", None),
        ("[::1]:5000/foo", "[::1]:5000", "foo", None),
        ("foo_bar.com/baz", "", "foo_bar.com/baz", None),  # no valid host: all of it is the path
        ("a" * 247, "docker.io", "library/" + "a" * 247, None),
        ("x:" + "t" * 128, "docker.io", "library/x", "t" * 128),
    ],
)
def test_normalisation(text: str, registry: str, repository: str, tag: str | None) -> None:
    ref = parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, None)
    assert parse(str(ref)) == ref == parse(ref.familiar)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("foo/Bar", "repository name must be lowercase"),
        ("Uppercase:tag", "repository name must be lowercase"),
        ("a" * 64, "cannot specify 64-byte hexadecimal strings"),
        ("a" * 248, "repository name must not be more than 255 characters"),
        ("x:" + "t" * 129, "invalid reference format"),
        ("", "invalid reference format"),
        ("x@sha256:" + "A" * 64, "invalid checksum digest format"),
        ("x@sha256:" + "a" * 63, "invalid checksum digest length"),
        ("x@sha384:" + "a" * 96, "unsupported digest algorithm"),
        ("x@md5:" + "a" * 32, "unsupported digest algorithm"),
        # Docker checks case up to the first ':', so an uppercase algorithm reads as a name.
        ("x@SHA256:" + "a" * 64, "repository name must be lowercase"),
        ("a\n", "invalid reference format"),
        ("ünïcode", "invalid reference format"),
    ],
)
def test_errors_name_input_and_rule(text: str, rule: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith(f'invalid reference "{text}": ') and message.endswith(rule)
    assert isinstance(info.value, ValueError)


def test_reference_is_a_frozen_hashable_value() -> None:
    a, b = parse("alpine:3.20"), parse("docker.io/library/alpine:3.20")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert str(a) == "docker.io/library/alpine:3.20" and a.familiar == "alpine:3.20"
    assert a.name == "docker.io/library/alpine" and a.familiar_name == "alpine"
    assert (a.domain, a.path) == (a.registry, a.repository)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.tag = "x"  # type: ignore[misc]
    assert r.parse_normalized is parse


def test_with_helpers() -> None:
    named = parse("ghcr.io/o/app")
    assert named.is_name_only and named.with_default_tag() == parse("ghcr.io/o/app:latest")
    pinned = named.with_digest(Digest.parse(SHA))
    assert pinned.with_default_tag() is pinned  # a digest needs no default tag
    both = pinned.with_tag("v1")
    assert str(both) == f"ghcr.io/o/app:v1@{SHA}" == str(named.with_tag("v1").with_digest(SHA))
    assert both.name_only() == named
    assert r.parse_docker_ref(str(both)) == pinned
    assert parse("alpine:1").with_default_tag().tag == "1"


@pytest.mark.parametrize(
    ("registry", "repository"),
    [
        ("docker.io", "alpine"),  # parse would add library/
        ("index.docker.io", "library/alpine"),
        ("myhost", "app"),  # parse would read myhost as a path component
        ("docker.io", "library/Alpine"),
        ("bad_host.com", "app"),
        ("ghcr.io", "a" * 256),
    ],
)
def test_constructor_refuses_non_canonical(registry: str, repository: str) -> None:
    with pytest.raises(InvalidReference):
        Reference(registry, repository)


def test_parse_any_refuses_a_digest_lorry_cannot_verify() -> None:
    with pytest.raises(InvalidReference, match="unsupported digest algorithm"):
        r.parse_any("sha384:" + "a" * 96)
    assert r.parse_any(SHA) == Digest.parse(SHA)


def test_familiar_match_follows_go_path_match() -> None:
    ref = parse("example.com/team/app:v1")
    assert familiar_match("example.com/*/app", ref)
    assert not familiar_match("example.com/*", ref)  # '*' never crosses '/'
    assert familiar_match("example.com/team/app:v[0-9]", ref)
    assert familiar_match("example.com/team/ap[^q]", ref)
    assert familiar_match("example.com/team/ap\\p", ref)
    for bad in ("[", "[]", "x\\", "[a-]", "[^"):
        with pytest.raises(InvalidInputError):
            familiar_match(bad, ref)


def test_long_inputs_fail_without_pathological_backtracking() -> None:
    for text in ("a" * 20000 + "!", "a/" * 5000 + "!", "a-" * 5000 + "-", "a." * 5000 + ":x/y"):
        with pytest.raises(InvalidReference):
            parse(text)


# --- Properties ---------------------------------------------------------------------------------

_REGISTRIES = st.one_of(
    st.sampled_from(
        [
            "",
            "docker.io",
            "index.docker.io",
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "ghcr.io",
            "[::1]:5000",
            "[2001:db8::1]",
            "Foo",
            "registry.example.com:443",
        ]
    ),
    # Docker takes a first component as the registry only if it looks like one.
    st.from_regex(re.compile(r.DOMAIN_RE.pattern, re.ASCII), fullmatch=True).filter(
        lambda d: "." in d or ":" in d or d != d.lower()
    ),
)
_COMPONENT = st.from_regex(re.compile(g.PATH_COMPONENT, re.ASCII), fullmatch=True)
_TAGS = st.none() | st.from_regex(r.ANCHORED_TAG_RE)
_DIGESTS = st.none() | st.builds(
    lambda alg, data: str(Digest.of(data, alg)), st.sampled_from(["sha256", "sha512"]), st.binary()
)


@given(_REGISTRIES, st.lists(_COMPONENT, min_size=1, max_size=4), _TAGS, _DIGESTS)
@example("", ["localhost"], "5000", None)
@example("docker.io", ["library", "a" * 247], None, SHA)
def test_valid_references_round_trip(
    registry: str, components: list[str], tag: str | None, digest: str | None
) -> None:
    text = (f"{registry}/" if registry else "") + "/".join(components)
    text += (f":{tag}" if tag is not None else "") + (f"@{digest}" if digest is not None else "")
    try:
        ref = parse(text)
    except InvalidReference as exc:  # the only rules generated text may break
        assert g.NAME_TOO_LONG in str(exc) or g.HEX_IDENTIFIER in str(exc)
        return
    assert (ref.tag, ref.digest) == (tag, digest)
    assert ref.repository.endswith(components[-1])
    assert parse(str(ref)) == ref
    assert parse(ref.familiar) == ref
    assert Reference(ref.registry, ref.repository, ref.tag, ref.digest) == ref


@given(st.text(alphabet="aZ09.:/@_-[]%\n ü", max_size=40))
def test_any_text_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        ref = parse(text)
    except InvalidReference as exc:
        assert f'"{text}"' in str(exc)
        return
    assert parse(str(ref)) == ref == parse(ref.familiar)


@pytest.mark.parametrize(
    ("text", "docker_familiar", "familiar"),
    [
        ("docker.io/a.b/app", "a.b/app", "docker.io/a.b/app"),
        ("docker.io/localhost/app:1", "localhost/app:1", "docker.io/localhost/app:1"),
        ("docker.io/index.docker.io/x", "index.docker.io/x", "docker.io/index.docker.io/x"),
        ("docker.io/library/a.b/c", "library/a.b/c", "library/a.b/c"),
    ],
)
def test_familiar_keeps_hub_prefix_where_docker_would_change_meaning(
    text: str, docker_familiar: str, familiar: str
) -> None:
    # The one deliberate difference from FamiliarString: Docker's short form names another image.
    ref = parse(text)
    assert ref.familiar == familiar
    assert parse(ref.familiar) == ref
    if docker_familiar != familiar:
        assert parse(docker_familiar) != ref
