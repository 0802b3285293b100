"""Secrets never leave the registry package: URLs, headers, free text and log records."""

from __future__ import annotations

import logging

import pytest

from lorry.registry.redact import (
    get_logger,
    redact_headers,
    redact_text,
    redact_url,
    remember_secret,
)


def test_signed_query_strings_and_passwords_are_masked() -> None:
    url = (
        "https://bucket.s3.example/blobs/x?X-Amz-Signature=abcdef&X-Amz-Credential=AKIA"
        "&digest=sha256:00&n=10"
    )
    got = redact_url(url)
    assert "abcdef" not in got and "AKIA" not in got
    assert "digest=sha256:00" in got and "n=10" in got
    assert redact_url("https://user:hunter2@host/v2/") == "https://user:***@host/v2/"


def test_upload_state_is_masked() -> None:
    got = redact_url("http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=SECRETSTATE")
    assert "SECRETSTATE" not in got


def test_headers_mask_authorization_only() -> None:
    got = redact_headers({"Authorization": "Bearer x", "Accept": "a"})
    assert got == {"Authorization": "***", "Accept": "a"}


def test_text_masks_inline_credentials_and_remembered_secrets() -> None:
    remember_secret("s3cr3t-password")
    text = 'auth Bearer eyJabc.def token="tok123" password: s3cr3t-password'
    got = redact_text(text)
    for secret in ("eyJabc.def", "tok123", "s3cr3t-password"):
        assert secret not in got


def test_log_filter_scrubs_formatted_records(caplog: pytest.LogCaptureFixture) -> None:
    remember_secret("another-secret-value")
    log = get_logger("lorry.registry.test_redact")
    with caplog.at_level(logging.DEBUG, logger="lorry.registry.test_redact"):
        log.debug("sending %s to %s", "another-secret-value", "https://h/x?sig=zzz")
    assert "another-secret-value" not in caplog.text
    assert "zzz" not in caplog.text
