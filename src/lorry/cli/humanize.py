"""Sizes and ages as docker prints them: ``7.8MB``, ``2 years ago``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["go_time", "human_duration", "human_size", "since"]


def human_size(size: int) -> str:
    """Decimal units with three significant digits, as docker's ``SIZE`` column: 276kB, 1.2MB."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if value < 1000 or unit == "PB":
            return f"{value:.3g}{unit}"
        value /= 1000
    raise AssertionError("unreachable")


def human_duration(seconds: float) -> str:
    """A duration in words, by the rules docker's ``CREATED`` column uses (go-units)."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def _parse(created: str | None) -> datetime | None:
    """An RFC 3339 time (as image configs write it), or None when missing or unreadable."""
    if not created:
        return None
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def since(created: str | None, now: datetime | None = None) -> str:
    """``2 years ago`` for an RFC 3339 time; ``N/A`` when unknown or unreadable."""
    when = _parse(created)
    if when is None:
        return "N/A"
    ref = now or datetime.now(UTC)
    return human_duration(max(0.0, (ref - when).total_seconds())) + " ago"


def go_time(created: str | None) -> str:
    """The time as Go prints a ``time.Time`` in UTC (docker's ``CreatedAt``)."""
    when = _parse(created) or datetime(1, 1, 1, tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC")
