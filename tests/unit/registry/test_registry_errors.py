"""Mapping registry responses to lorry's error kinds, with bodies of any shape."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from lorry.errors import (
    AuthError,
    IntegrityError,
    InvalidInputError,
    NotFoundError,
    UnavailableError,
    UnsupportedError,
)
from lorry.registry.errors import error_for_status, parse_error_body, parse_retry_after

_JSON = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (404, _JSON, NotFoundError),
        (401, b'{"errors":[{"code":"UNAUTHORIZED","message":"x"}]}', AuthError),
        (401, b'{"errors":[{"code":"DENIED","message":"no such repo"}]}', AuthError),
        (403, b"", AuthError),
        (429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"slow"}]}', UnavailableError),
        (503, b"<html><body>bad gateway</body></html>", UnavailableError),
        (400, b'{"errors":[{"code":"DIGEST_INVALID","message":"bad"}]}', IntegrityError),
        (400, b'{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}', InvalidInputError),
        (405, b'{"errors":[{"code":"UNSUPPORTED","message":"no"}]}', UnsupportedError),
        (404, b"not json at all", NotFoundError),
    ],
)
def test_kinds(status: int, body: bytes, kind: type[Exception]) -> None:
    err = error_for_status(
        status, "Reason", what="fetching x from r/a", url="http://r/v2/", body=body
    )
    assert type(err) is kind
    assert err.status == status
    assert str(err).startswith("fetching x from r/a: ")


def test_message_names_codes_and_redacts_url() -> None:
    err = error_for_status(
        404,
        "Not Found",
        what="fetching manifest v1 from r/a",
        url="https://s/x?sig=abc",
        body=_JSON,
    )
    assert (
        str(err)
        == "fetching manifest v1 from r/a: 404 Not Found: MANIFEST_UNKNOWN: manifest unknown"
    )
    assert err.codes == ("MANIFEST_UNKNOWN",)
    assert err.url is not None and "abc" not in err.url


def test_html_bodies_add_nothing() -> None:
    codes, detail = parse_error_body(b"<!DOCTYPE html><html>" + b"x" * 1000, "text/html")
    assert codes == [] and detail == ""


def test_retry_after_seconds_and_dates() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("7", now) == 7.0
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert parse_retry_after(date, now) == pytest.approx(30.0)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
