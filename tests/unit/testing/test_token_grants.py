"""The token issuer's rule table: scope parsing and intersection with grants."""

from __future__ import annotations

from lorry.testing._token_grants import granted_scopes, parse_scope, scope_access

GRANTS = {"repo/*": ["pull", "push"], "other": ["pull"], "admin/*": ["*"]}


def test_parse_scope() -> None:
    assert parse_scope("repository:app/web:pull,push") == (
        "repository",
        "app/web",
        ["pull", "push"],
    )
    assert parse_scope("repository:host:5000/app:pull") == ("repository", "host:5000/app", ["pull"])
    assert parse_scope("registry:catalog:*") == ("registry", "catalog", ["*"])
    assert parse_scope("repository:app") is None
    assert parse_scope("nonsense") is None


def test_requested_actions_are_cut_to_the_grants() -> None:
    asked = ["repository:repo/a:pull,push", "repository:other:pull,push"]
    assert granted_scopes(asked, GRANTS) == ["repository:repo/a:pull,push", "repository:other:pull"]


def test_denied_scopes_are_dropped_not_refused() -> None:
    asked = ["repository:secret:pull", "repository:other:push", "repository:repo/x:pull"]
    assert granted_scopes(asked, GRANTS) == ["repository:repo/x:pull"]
    assert granted_scopes(asked, {}) == []


def test_star_rule_allows_any_action_and_globs_match_whole_names() -> None:
    assert granted_scopes(["repository:admin/x:delete,*"], GRANTS) == [
        "repository:admin/x:delete,*"
    ]
    assert granted_scopes(["repository:repo:pull"], GRANTS) == []
    assert granted_scopes(["repository:xrepo/a:pull"], GRANTS) == []


def test_type_patterns_and_malformed_scopes() -> None:
    grants = {"registry:catalog": ["*"], "repo/*": ["pull"]}
    assert granted_scopes(["registry:catalog:*", "garbage", "registry:repo/a:pull"], grants) == [
        "registry:catalog:*"
    ]


def test_cross_repo_mount_scope_is_granted_per_repository() -> None:
    asked = ["repository:repo/dst:pull,push", "repository:other:pull"]
    assert granted_scopes(asked, GRANTS) == asked


def test_scope_access_claim() -> None:
    assert scope_access(["repository:a/b:pull,push", "bad"]) == [
        {"type": "repository", "name": "a/b", "actions": ["pull", "push"]}
    ]
