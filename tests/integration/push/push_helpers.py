"""Helpers of the push tests: reading the progress a push reported."""

from __future__ import annotations

from lorry.ops.session import SessionOptions
from lorry.progress import CollectingSink


def anonymous() -> SessionOptions:
    """Session options that never read the user's docker credentials."""
    return SessionOptions(credentials=lambda _host: None, timeout=10.0)


def layer_statuses(sink: CollectingSink) -> dict[str, str]:
    """The last status of every layer line (id → status)."""
    out: dict[str, str] = {}
    for ev in sink.events:
        if ev.id and not ev.is_message and ev.aux is None:
            out[ev.id] = ev.status
    return out


def messages(sink: CollectingSink) -> list[str]:
    """The free-standing message lines, in order."""
    return [ev.status for ev in sink.events if ev.is_message]
