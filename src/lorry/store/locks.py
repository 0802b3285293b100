"""Cross-process file locks (flock) that survive their holder's death cleanly.

Two lorry processes coordinate through ``flock(2)`` locks on small files in the store: one per
ingest (who is writing this blob) and one for the whole store (a prune excludes writers). The
kernel drops a flock lock when its holder dies, so a killed process never leaves a stale lock
behind: the next acquirer simply gets it.

A lock file may be unlinked by its holder (after a commit, or by prune). Whoever then acquires
the old, unlinked inode would lock nothing, so :meth:`FileLock.acquire` checks after locking
that the path still names the inode it locked, and starts over if it does not.

Waiting polls with a short sleep rather than blocking in the kernel, so that a waiter can be
cancelled: ``on_wait`` is called before every sleep and may raise to give up (async callers
pass ``anyio.from_thread.check_cancelled``).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path

from lorry.errors import StoreError
from lorry.store.fsutil import os_error

__all__ = ["POLL_INTERVAL", "FileLock", "WaitHook"]

#: Seconds between two attempts to take a lock somebody else holds.
POLL_INTERVAL = 0.02
#: Called while waiting for a lock; may raise to stop waiting.
WaitHook = Callable[[], None]


class FileLock:
    """An flock lock on ``path``, held through one open file description.

    One ``FileLock`` object is used by one thread at a time. Two objects on the same path
    exclude each other even inside one process (flock locks belong to the open file, not to
    the process), which is what makes threads and processes behave alike.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(
        self, *, shared: bool = False, blocking: bool = True, on_wait: WaitHook | None = None
    ) -> bool:
        """Take the lock; return False only when ``blocking`` is False and somebody holds it."""
        if self._fd is not None:
            raise StoreError(f"lock {self.path} is already held by this object")
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        while True:
            fd = self._open()
            try:
                got = self._try_lock(fd, mode, blocking, on_wait)
            except BaseException:
                os.close(fd)
                raise
            if not got:
                os.close(fd)
                return False
            if self._still_named(fd):
                self._fd = fd
                return True
            os.close(fd)  # the file was unlinked while we waited: lock the new one

    def release(self, *, unlink: bool = False) -> None:
        """Drop the lock; with ``unlink`` remove the lock file first (while still holding it)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if unlink:
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def _open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise os_error(exc, "opening lock file", self.path) from exc

    def _try_lock(self, fd: int, mode: int, blocking: bool, on_wait: WaitHook | None) -> bool:
        while True:
            try:
                fcntl.flock(fd, mode)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EINTR):
                    raise os_error(exc, "locking", self.path) from exc
            if not blocking:
                return False
            if on_wait is not None:
                on_wait()
            time.sleep(POLL_INTERVAL)

    def _still_named(self, fd: int) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        mine = os.fstat(fd)
        return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
