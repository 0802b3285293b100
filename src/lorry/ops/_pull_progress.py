"""Pull progress helpers: the ``Downloading`` throttle and the pull's message lines.

A progress reader in moby reports every 512 KiB or every 1 % of the size, whichever comes first,
and once more at the end (xfer-spec §5.6). :class:`ByteThrottle` is that rule as pure logic, so
the byte path asks it per chunk and only crosses to the event loop when an update is due.
"""

from __future__ import annotations

from lorry.progress import ProgressEvent
from lorry.transfer import statuses as st

__all__ = ["STEP", "ByteThrottle", "digest_line", "downloading", "pulling_from", "status_line"]

#: Report at least every this many bytes (xfer-spec §5.6).
STEP = 512 * 1024


class ByteThrottle:
    """Says when a byte count is worth reporting: every min(512 KiB, 1 % of total) bytes."""

    def __init__(self, total: int | None, start: int = 0) -> None:
        self.total = total
        self.step = STEP if not total else max(1, min(STEP, total // 100))
        self._last = start

    def due(self, current: int) -> bool:
        """True when ``current`` should be reported (and remember it as reported)."""
        final = self.total is not None and current >= self.total
        if current - self._last >= self.step or (final and current != self._last):
            self._last = current
            return True
        return False


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
