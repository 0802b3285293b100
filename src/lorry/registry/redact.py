"""Redaction of secrets from URLs, headers and log lines.

Registry traffic carries secrets in three places: the ``Authorization`` header, the userinfo
part of a URL, and the query string of a pre-signed storage URL (S3, GCS, Azure and CDN
signatures all live there under different names). Rather than chase every provider's parameter
names, :func:`redact_url` keeps only the query parameters the Distribution API itself defines and
masks every other value. Tokens and passwords lorry learns at run time are also registered with
:func:`remember_secret`, and :class:`SecretFilter` scrubs them from every log record of
the loggers this package writes to (see :func:`get_logger`), so a secret that slips into a
message is still never written out.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "SecretFilter",
    "get_logger",
    "redact_headers",
    "redact_text",
    "redact_url",
    "remember_secret",
]

#: What a redacted value is replaced with.
MASK = "***"

# Query parameters of the Distribution API and token protocol that carry no secret.
_SAFE_PARAMS = frozenset(
    {"n", "last", "digest", "mount", "from", "service", "scope", "tag", "ns", "account"}
)
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
_INLINE = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"
    r"|(\"?(?:token|access_token|refresh_token|password|identitytoken|secret)\"?\s*[:=]\s*\"?)"
    r"[^\"&\s,}]+"
)
_MIN_SECRET = 4

_lock = threading.Lock()
_secrets: set[str] = set()


def remember_secret(value: str | None) -> None:
    """Register a password or token so that every later log line masks it."""
    if value and len(value) >= _MIN_SECRET:
        with _lock:
            _secrets.add(value)


def redact_url(url: str) -> str:
    """The URL with its password and every non-API query value replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(
            f"{quote(k, safe='')}={quote(v, safe=':/,') if k in _SAFE_PARAMS else MASK}"
            for k, v in pairs
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credentials and cookies masked, for debug logging."""
    return {k: (MASK if k.lower() in _SECRET_HEADERS else v) for k, v in headers.items()}


def redact_text(text: str) -> str:
    """``text`` with every remembered secret, inline credential and signed URL masked."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    text = _INLINE.sub(lambda m: (m.group(2) or f"{m.group(1)} ") + MASK, text)
    return re.sub(r"https?://[^\s\"'<>]+", lambda m: redact_url(m.group(0)), text)


class SecretFilter(logging.Filter):
    """A logging filter that masks secrets in a record's final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drop a record."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True
        cleaned = redact_text(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        return True


def get_logger(name: str) -> logging.Logger:
    """The named logger with :class:`SecretFilter` attached (filters are not inherited)."""
    log = logging.getLogger(name)
    if not any(isinstance(f, SecretFilter) for f in log.filters):
        log.addFilter(SecretFilter())
    return log
