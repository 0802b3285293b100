"""What a sync did, per image and destination: the ``--report`` JSON and the exit status.

One :class:`Entry` per image (source repository + tag) and destination: the digest the source
tag names, the digest the destination holds afterwards, the action (``copied``, ``unchanged``,
``would-copy`` in a dry run, ``failed``), the blob bytes sent for it and the error. Referrers
(signatures, attestations) have entries of their own that name their subject.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lorry.errors import LorryError
from lorry.store.fsutil import atomic_write

__all__ = ["ACTIONS", "Entry", "SyncReport"]

#: Every action an entry can have.
ACTIONS = ("copied", "unchanged", "would-copy", "failed")


@dataclass(frozen=True)
class Entry:
    """One image at one destination."""

    source: str
    destination: str
    action: str
    source_digest: str | None = None
    destination_digest: str | None = None
    bytes: int = 0
    error: str | None = None
    #: The digest this image refers to, when it is a referrer (a signature, an SBOM).
    referrer_of: str | None = None


@dataclass
class SyncReport:
    """Every entry of a run, in the order they finished; safe to add to from any thread."""

    entries: list[Entry] = field(default_factory=list)
    errors: list[LorryError] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, entry: Entry, error: LorryError | None = None) -> None:
        """Record an entry (and the error of a failed one)."""
        with self._lock:
            self.entries.append(entry)
            if error is not None:
                self.errors.append(error)

    @property
    def failed(self) -> list[Entry]:
        """The failed entries."""
        with self._lock:
            return [e for e in self.entries if e.action == "failed"]

    def summary(self) -> dict[str, int]:
        """How many entries had each action, and the bytes sent."""
        with self._lock:
            counts = Counter(e.action for e in self.entries)
            out = {a.replace("-", "_"): counts.get(a, 0) for a in ACTIONS}
            out["bytes"] = sum(e.bytes for e in self.entries)
        return out

    def to_json(self) -> dict[str, Any]:
        """The report document (docs/sync.md, "Report")."""
        with self._lock:
            images = [asdict(e) for e in self.entries]
        return {"summary": self.summary(), "images": images}

    def write(self, path: Path) -> None:
        """Write the JSON report to ``path`` atomically."""
        atomic_write(path, json.dumps(self.to_json(), indent=2).encode() + b"\n")

    def digest_lines(self) -> list[str]:
        """``DESTINATION@DIGEST`` for every image the destinations now hold (for pinning)."""
        with self._lock:
            return [
                f"{e.destination.split('://', 1)[-1].rsplit(':', 1)[0]}@{e.destination_digest}"
                for e in self.entries
                if e.destination_digest and e.action in ("copied", "unchanged")
            ]
