"""Pull progress helpers: ``Downloading`` updates and the pull's message lines.

The throttle itself (:class:`lorry.progress.ByteThrottle`) is shared with push's progress
reader: one rule for every byte path.
"""

from __future__ import annotations

from lorry.progress import ProgressEvent
from lorry.transfer import statuses as st

__all__ = ["digest_line", "downloading", "pulling_from", "status_line"]


def downloading(line_id: str, current: int, total: int | None) -> ProgressEvent:
    """A ``Downloading`` update with a byte count."""
    return ProgressEvent(id=line_id, status=st.DOWNLOADING, current=current, total=total)


def pulling_from(tag_or_digest: str, repository: str) -> ProgressEvent:
    """The header line: ``<tag>: Pulling from <repository path>``, as docker prints it."""
    return ProgressEvent(id=tag_or_digest, status=f"Pulling from {repository}", is_message=True)


def digest_line(digest: object) -> ProgressEvent:
    """``Digest: sha256:…`` after a pull."""
    return ProgressEvent(status=f"Digest: {digest}", is_message=True)


def status_line(updated: bool, familiar: str) -> ProgressEvent:
    """The closing ``Status:`` line: a newer image, or already up to date."""
    text = "Downloaded newer image for" if updated else "Image is up to date for"
    return ProgressEvent(status=f"Status: {text} {familiar}", is_message=True)
