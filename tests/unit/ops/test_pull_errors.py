"""Registry errors as a pull reports them (moby's translatePullError, xfer-spec §4.8)."""

from __future__ import annotations

import pytest

from lorry.errors import AuthError, LorryError, NotFoundError, UnavailableError
from lorry.ops._pull_errors import translate_pull_error
from lorry.reference import parse_docker_ref

REF = parse_docker_ref("busybox:1.36")
LOCAL = parse_docker_ref("127.0.0.1:5000/team/app:v1")


@pytest.mark.parametrize(
    ("error", "kind", "text"),
    [
        (
            NotFoundError("fetching manifest", status=404, codes=["MANIFEST_UNKNOWN"]),
            NotFoundError,
            "manifest for busybox:1.36 not found",
        ),
        (
            NotFoundError("fetching manifest", status=404, codes=["NAME_UNKNOWN"]),
            NotFoundError,
            "repository busybox not found",
        ),
        (
            AuthError("fetching manifest", status=401, codes=["UNAUTHORIZED"]),
            AuthError,
            "pull access denied for busybox, repository does not exist or may require "
            "'lorry login'",
        ),
        (
            AuthError("fetching manifest", status=403, codes=["DENIED"]),
            AuthError,
            "pull access denied for busybox",
        ),
    ],
)
def test_translated(error: LorryError, kind: type[LorryError], text: str) -> None:
    got = translate_pull_error(error, REF)
    assert type(got) is kind
    assert str(got).startswith(text)
    assert got.__cause__ is error
    assert got.status == error.status and got.codes == error.codes


def test_local_registry_names_are_fully_qualified() -> None:
    err = NotFoundError("x", status=404, codes=["MANIFEST_UNKNOWN"])
    assert (
        str(translate_pull_error(err, LOCAL)) == "manifest for 127.0.0.1:5000/team/app:v1 not found"
    )


@pytest.mark.parametrize(
    "error",
    [
        UnavailableError("fetching manifest: 503", status=503),
        NotFoundError("blob unknown", status=404, codes=["BLOB_UNKNOWN"]),
        AuthError("no credentials"),
    ],
)
def test_other_errors_pass_unchanged(error: LorryError) -> None:
    assert translate_pull_error(error, REF) is error
