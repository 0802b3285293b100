"""Turning registry responses and transport failures into lorry's error kinds.

The distribution spec defines error codes (``MANIFEST_UNKNOWN``, ``DENIED``, ...) in a JSON body,
but registries also answer with HTML error pages, plain text, or nothing at all. The mapping here
looks at the codes first and the HTTP status second, reads at most :data:`MAX_ERROR_BODY` bytes
of the body, and produces one message that names the action, the object and the registry:
``fetching manifest latest from 127.0.0.1:5000/app: 404 Not Found: MANIFEST_UNKNOWN: manifest
unknown``. Every URL in it is redacted.
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from typing import Any

from lorry.errors import (
    AuthError,
    IntegrityError,
    InvalidInputError,
    LorryError,
    NotFoundError,
    UnavailableError,
    UnsupportedError,
)
from lorry.oci._json import parse_json
from lorry.registry.redact import redact_text, redact_url

__all__ = [
    "MAX_ERROR_BODY",
    "error_for_status",
    "parse_error_body",
    "parse_retry_after",
]

#: How much of an error body is read: enough for a JSON error list, not a whole HTML page.
MAX_ERROR_BODY = 64 * 1024

_NOT_FOUND = {"BLOB_UNKNOWN", "BLOB_UPLOAD_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_UNKNOWN"}
_AUTH = {"UNAUTHORIZED", "DENIED"}
_INTEGRITY = {"DIGEST_INVALID", "SIZE_INVALID"}
_UNSUPPORTED = {"UNSUPPORTED"}
_UNAVAILABLE = {"TOOMANYREQUESTS", "UNAVAILABLE"}
_TEMPORARY_STATUS = {408, 425, 429, 499, 500, 502, 503, 504, 522}


def parse_error_body(body: bytes, content_type: str | None) -> tuple[list[str], str]:
    """The spec error codes and a short human message from an error body of any shape."""
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            doc: Any = parse_json(text)
        except ValueError:
            doc = None
        errors = doc.get("errors") if isinstance(doc, dict) else None
        if isinstance(errors, list):
            codes: list[str] = []
            messages: list[str] = []
            for err in errors:
                if isinstance(err, dict):
                    code = str(err.get("code", "")).upper()
                    if code:
                        codes.append(code)
                    msg = str(err.get("message", "") or "")
                    if msg:
                        messages.append(msg)
            return codes, "; ".join(dict.fromkeys(messages))
        if isinstance(doc, dict) and isinstance(doc.get("details") or doc.get("error"), str):
            return [], str(doc.get("details") or doc.get("error"))
    if "html" in (content_type or "").lower() or text.lower().startswith(("<!doctype", "<html")):
        return [], ""  # an HTML error page says nothing a user needs
    return [], " ".join(text.split())[:200]


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now)


def error_for_status(
    status: int,
    reason: str,
    *,
    what: str,
    url: str,
    body: bytes = b"",
    content_type: str | None = None,
    retry_after: float | None = None,
) -> LorryError:
    """The lorry error for a failed response; ``what`` is e.g. ``fetching blob X from reg/repo``."""
    codes, detail = parse_error_body(body, content_type)
    parts = [what, f"{status} {reason}".strip()]
    if codes:
        parts.append(", ".join(dict.fromkeys(codes)))
    if detail:
        parts.append(redact_text(detail))
    if retry_after is not None and status in (429, 503):
        parts.append(f"retry after {retry_after:g}s")
    message = ": ".join(parts)
    kind = _kind(status, set(codes))
    return kind(message, status=status, url=redact_url(url), codes=codes, retry_after=retry_after)


def _kind(status: int, codes: set[str]) -> type[LorryError]:
    """The error class for a status and its spec codes; codes win when they are specific."""
    if codes & _NOT_FOUND:
        return NotFoundError
    if codes & _UNAVAILABLE or status in _TEMPORARY_STATUS:
        return UnavailableError
    if codes & _AUTH or status in (401, 403):
        return AuthError
    if codes & _INTEGRITY:
        return IntegrityError
    if codes & _UNSUPPORTED or status in (405, 501):
        return UnsupportedError
    if status == 404:
        return NotFoundError
    if 500 <= status < 600:
        return UnavailableError
    return InvalidInputError
