"""Tests of lorry.errors: the retry oracle and exit codes."""

from __future__ import annotations

import errno

import pytest

from lorry import errors as e


@pytest.mark.parametrize(
    ("exc", "retry"),
    [
        (e.UnavailableError("503"), True),
        (e.StallError("stalled"), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (EOFError(), True),
        (e.IntegrityError("digest mismatch"), False),
        (e.NotFoundError("blob unknown"), False),
        (e.AuthError("denied"), False),
        (e.DiskFullError("full"), False),
        (e.UnsupportedError("media type"), False),
        (e.InvalidReference("bad"), False),
        (e.CancelledError("cancelled"), False),
        (OSError(errno.ENOSPC, "No space left on device"), False),
        (ValueError("x"), False),
    ],
)
def test_is_retryable(exc: BaseException, retry: bool) -> None:
    assert e.is_retryable(exc) is retry


def test_invalid_reference_is_value_error_and_input_error() -> None:
    err = e.InvalidReference("invalid reference format: 'A'")
    assert isinstance(err, ValueError)
    assert isinstance(err, e.InvalidInputError)
    assert e.exit_code(err) == 2


def test_registry_fields_kept() -> None:
    err = e.UnavailableError(
        "x", status=429, url="https://r/v2/", codes=["TOOMANYREQUESTS"], retry_after=3.0
    )
    assert (err.status, err.codes, err.retry_after) == (429, ("TOOMANYREQUESTS",), 3.0)
