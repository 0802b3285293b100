"""WWW-Authenticate parsing: quoted strings, commas in scope, several challenges."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from lorry.registry.challenge import parse_challenges


def test_bearer_with_commas_inside_scope() -> None:
    header = (
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:app/web:pull,push repository:base:pull"'
    )
    [ch] = parse_challenges([header])
    assert ch.scheme == "bearer"
    assert ch.realm == "https://auth.example/token"
    assert ch.service == "registry.example"
    assert ch.scopes == ("repository:app/web:pull,push", "repository:base:pull")


def test_several_challenges_in_one_header_and_across_headers() -> None:
    got = parse_challenges(
        ['Basic realm="r1", Bearer realm="https://t/x",error=insufficient_scope']
    )
    got += parse_challenges(["Negotiate abc==, Basic realm=plain"])
    assert [c.scheme for c in got] == ["basic", "bearer", "negotiate", "basic"]
    assert got[1].error == "insufficient_scope"
    assert got[2].params == {"": "abc=="}
    assert got[3].realm == "plain"


def test_escaped_quotes_and_spaces_around_equals() -> None:
    [ch] = parse_challenges(['Bearer realm = "a\\"b" , service="s"'])
    assert ch.realm == 'a"b'
    assert ch.service == "s"


def test_scheme_names_are_case_insensitive_and_params_lowercased() -> None:
    [ch] = parse_challenges(['BEARER Realm="x"'])
    assert ch.scheme == "bearer"
    assert ch.realm == "x"


_value = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\\"),
    max_size=30,
)


@given(realm=_value, service=_value, scope=_value)
def test_quoted_values_round_trip(realm: str, service: str, scope: str) -> None:
    def q(v: str) -> str:
        return '"' + v.replace('"', '\\"') + '"'

    header = f"Bearer realm={q(realm)},service={q(service)},scope={q(scope)}"
    [ch] = parse_challenges([header])
    assert ch.params == {"realm": realm, "service": service, "scope": scope}
