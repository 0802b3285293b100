"""Saved registry upload sessions, so a push killed mid-blob can continue that upload later.

One JSON file per registry + repository + blob digest under a directory the caller names (push:
``<store root>/uploads``): the session URL (``_state`` included), the blob size, the offset the
registry last confirmed and when it was saved. Each save replaces the file atomically (temp,
fsync, rename, directory fsync), with mode 0600: an upload URL can let its holder write to the
repository. A saved session is used by one upload at a time — whoever holds the ``flock`` on the
record's ``.lock`` file (the lock goes with the process, however it dies); another upload of
the same blob meanwhile starts its own session and saves nothing.

A record that does not parse, names another registry, repository, digest or size, points off
the registry's own origin, or is older than :data:`MAX_AGE` (docker-registry purges abandoned
uploads after a week) is never used and is deleted. Saving is best effort: a failing disk costs
the ability to resume, never the push.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from lorry.digest import Digest
from lorry.store.fsutil import fsync_dir, tmp_name

__all__ = ["MAX_AGE", "UploadClaim", "UploadRecord", "UploadStates"]

log = logging.getLogger(__name__)

#: Seconds a saved session is trusted (docker-registry's default upload purge age: 168 h).
MAX_AGE = 6 * 24 * 3600.0
_VERSION = 1
_SUFFIX = ".json"
_LOCK = ".lock"


@dataclass(frozen=True)
class UploadRecord:
    """One saved upload session: whose blob, where it is, and how far the registry has it."""

    registry: str
    repository: str
    digest: str
    size: int
    location: str
    offset: int
    min_chunk: int | None
    saved_at: float

    def to_json(self) -> bytes:
        """The file's content."""
        return json.dumps({"version": _VERSION, **asdict(self)}, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> UploadRecord | None:
        """The record in a file's content, or None when it is not one this code wrote."""
        try:
            raw: Any = json.loads(data)
            if not isinstance(raw, dict) or raw.pop("version", None) != _VERSION:
                return None
            record = cls(**raw)
        except (ValueError, TypeError):
            return None
        ints = (record.size, record.offset, record.min_chunk or 0)
        texts = (record.registry, record.repository, record.digest, record.location)
        if not all(isinstance(v, int) and v >= 0 for v in ints):
            return None
        if not all(isinstance(v, str) for v in texts) or not isinstance(record.saved_at, float):
            return None
        return record


class UploadStates:
    """The directory of saved upload sessions (made, 0700, on the first save)."""

    def __init__(
        self, directory: Path, *, max_age: float = MAX_AGE, clock: Callable[[], float] = time.time
    ) -> None:
        self.directory = directory
        self.max_age = max_age
        self.clock = clock
        self._swept = False

    def claim(self, registry: str, repository: str, digest: Digest) -> UploadClaim | None:
        """The one claim on this blob's saved session; None while another upload holds it."""
        self._sweep()
        key = hashlib.sha256(f"{registry}\0{repository}\0{digest}".encode()).hexdigest()
        claim = UploadClaim(self, self.directory / f"{key}{_SUFFIX}", registry, repository, digest)
        return claim if claim.acquire() else None

    def _sweep(self) -> None:
        """Delete records too old to use (once per instance: one directory listing per push)."""
        if self._swept:
            return
        self._swept = True
        try:
            entries = list(os.scandir(self.directory))
        except OSError:
            return
        now = self.clock()
        for entry in entries:
            if not entry.name.endswith(_SUFFIX):
                continue
            try:
                if now - entry.stat().st_mtime > self.max_age:
                    os.unlink(entry.path)  # its .lock goes when the blob is next pushed
            except OSError:
                continue


class UploadClaim:
    """Exclusive use of one blob's saved session (a context manager; :meth:`release` ends it)."""

    def __init__(
        self, states: UploadStates, path: Path, registry: str, repository: str, digest: Digest
    ) -> None:
        self.states = states
        self.path = path
        self.registry = registry
        self.repository = repository
        self.digest = digest
        self._lock_path = path.with_suffix(_LOCK)
        self._fd: int | None = None
        self._broken = False  # a save failed: stop trying for this upload

    def acquire(self) -> bool:
        """Take the lock without waiting; False when another upload holds it (or no disk)."""
        for _ in range(3):  # the lock file may be unlinked between our open and our flock
            try:
                self.states.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                log.debug("upload state %s unavailable: %s", self.states.directory, exc)
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    log.debug("locking %s failed: %s", self._lock_path, exc)
                return False
            try:
                same = os.fstat(fd).st_ino == os.stat(self._lock_path).st_ino
            except OSError:
                same = False
            if same:
                self._fd = fd
                return True
            os.close(fd)
        return False

    def load(self, size: int, is_home: Callable[[str], bool]) -> UploadRecord | None:
        """The saved session of this blob, if one fits (else the file is deleted).

        ``is_home`` says whether a URL is on the registry's own origin; a session elsewhere is
        never used (it would be asked with this registry's credentials in mind).
        """
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.debug("reading %s failed: %s", self.path, exc)
            return None
        record = UploadRecord.from_json(data)
        why = self._unfit(record, size, is_home)
        if why is not None:
            log.debug("not resuming the saved upload in %s: %s", self.path, why)
            self.discard()
            return None
        return record

    def _unfit(
        self, record: UploadRecord | None, size: int, is_home: Callable[[str], bool]
    ) -> str | None:
        """Why a saved record cannot be used here, or None when it can."""
        if record is None:
            return "not a record"
        if (record.registry, record.repository) != (self.registry, self.repository):
            return f"it is for {record.registry}/{record.repository}"
        if record.digest != str(self.digest) or record.size != size:
            return f"it is for blob {record.digest} of {record.size} bytes"
        if record.offset > size:
            return f"its offset {record.offset} is past the end"
        if not is_home(record.location):
            return "its URL is not on the registry's own host"
        if not 0 <= self.states.clock() - record.saved_at <= self.states.max_age:
            return "it is too old"
        return None

    def save(self, location: str, offset: int, size: int, min_chunk: int | None) -> None:
        """Record where the session is and how far the registry confirmed it (atomic, 0600)."""
        if self._fd is None or self._broken:
            return
        if "@" in urlsplit(location).netloc:  # never write credentials, even ones a URL carries
            log.debug("not saving an upload URL with credentials in it")
            self.discard()
            return
        record = UploadRecord(
            registry=self.registry,
            repository=self.repository,
            digest=str(self.digest),
            size=size,
            location=location,
            offset=offset,
            min_chunk=min_chunk,
            saved_at=float(self.states.clock()),
        )
        tmp = tmp_name(self.path)
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(record.to_json())
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
            fsync_dir(self.path.parent)
        except OSError as exc:
            self._broken = True
            log.warning("cannot save upload progress in %s (%s); a rerun starts over", tmp, exc)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def discard(self) -> None:
        """Forget the saved session (the blob is committed, or the session is dead)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.debug("removing %s failed: %s", self.path, exc)

    def release(self, *, finished: bool = False) -> None:
        """Let go of the lock; ``finished`` (no record left to guard) removes the lock file."""
        if self._fd is None:
            return
        try:
            if finished and not self.path.exists():
                self._lock_path.unlink(missing_ok=True)
        except OSError:
            pass
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> UploadClaim:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
