"""One fetch per blob across the repositories of a destination registry, and shared layouts.

The upload manager already merges moves of one blob to one repository (its key is registry +
repository + digest). A sync sends the same base layers to many repositories of one registry:
:class:`BlobLedger` remembers which repository of each destination registry holds a blob (sent,
mounted or found there during this sync) and which one is being sent right now. A
:class:`LedgerDestination` asking for a blob that another repository is receiving waits for
that move to end, then mounts from it (the registry copies nothing; the source is not read
again). Only a blob nobody holds or sends is sent from the source, once.

:class:`LayoutDestination` is an OCI layout that many images of one sync share: commits (the
read-modify-write of ``index.json``) take turns, per directory.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import anyio.from_thread

from lorry.digest import Digest
from lorry.oci import Descriptor
from lorry.registry.client import RegistryClient
from lorry.transports import BlobOpener, Reuse, WaitHook
from lorry.transports.oci_layout import OciLayoutDestination
from lorry.transports.registry import RegistryDestination

__all__ = ["BlobLedger", "LayoutDestination", "LedgerDestination"]

_Key = tuple[str, Digest]
_POLL = 0.1  # seconds between cancellation checks while waiting for another move


class BlobLedger:
    """Per destination registry: which repositories hold each blob, which blobs are in flight."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders: dict[_Key, list[str]] = {}
        self._busy: dict[_Key, threading.Event] = {}

    def holders(self, key: _Key) -> list[str]:
        """Repositories known to hold the blob, first known first."""
        with self._lock:
            return list(self._holders.get(key, ()))

    def add(self, key: _Key, repository: str) -> None:
        """``repository`` holds the blob now."""
        with self._lock:
            repos = self._holders.setdefault(key, [])
            if repository not in repos:
                repos.append(repository)

    def drop(self, key: _Key, repository: str) -> None:
        """``repository`` turned out not to hold the blob."""
        with self._lock:
            repos = self._holders.get(key, [])
            if repository in repos:
                repos.remove(repository)

    def claim(self, key: _Key) -> tuple[bool, threading.Event | None]:
        """``(True, None)``: the caller sends it now (end with :meth:`release`);
        ``(False, None)``: go on (someone holds it); ``(False, event)``: wait, then ask again."""
        with self._lock:
            if self._holders.get(key):
                return False, None
            event = self._busy.get(key)
            if event is not None:
                return False, event
            self._busy[key] = threading.Event()
            return True, None

    def release(self, key: _Key) -> None:
        """The claimed move ended (either way): wake whoever waits for it."""
        with self._lock:
            event = self._busy.pop(key, None)
        if event is not None:
            event.set()


class _LedgerMemory:
    """The ledger as a registry destination's :class:`~lorry.transports.BlobMemory`."""

    def __init__(self, ledger: BlobLedger, registry: str, repository: str) -> None:
        self.ledger = ledger
        self.registry = registry
        self.repository = repository

    def mount_sources(self, desc: Descriptor) -> Sequence[str]:
        """Other repositories of the registry that hold the blob."""
        key = (self.registry, desc.digest)
        return [r for r in self.ledger.holders(key) if r != self.repository]

    def forget(self, desc: Descriptor) -> None:
        """This repository does not hold the blob."""
        self.ledger.drop((self.registry, desc.digest), self.repository)

    def remember(self, desc: Descriptor) -> None:
        """This repository holds the blob now."""
        self.ledger.add((self.registry, desc.digest), self.repository)


class LedgerDestination(RegistryDestination):
    """A registry destination that waits for another repository's move of a blob and mounts."""

    def __init__(
        self,
        client: RegistryClient,
        tag: str | None,
        ledger: BlobLedger,
        *,
        mount_from: tuple[str, ...] = (),
    ) -> None:
        memory = _LedgerMemory(ledger, client.registry, client.repository)
        super().__init__(client, tag, mount_from=mount_from, memory=memory)
        self._ledger = ledger
        self._claims: set[Digest] = set()
        self._claims_lock = threading.Lock()

    def reuse_blob(self, desc: Descriptor) -> Reuse:
        """Wait while another repository receives the blob; then HEAD, mount, or claim it."""
        key = (self.client.registry, desc.digest)
        while True:
            claimed, event = self._ledger.claim(key)
            if event is None:
                break
            while not event.wait(_POLL):
                anyio.from_thread.check_cancelled()
        if claimed:
            with self._claims_lock:
                self._claims.add(desc.digest)
        try:
            reused = super().reuse_blob(desc)
        except BaseException:
            self._release(desc.digest)
            raise
        if reused:
            self._release(desc.digest)
        return reused

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        """Send the blob; whoever waits for it is woken either way."""
        try:
            super().put_blob(desc, open_at, on_wait)
        finally:
            self._release(desc.digest)

    def abort(self) -> None:
        """Drop open upload sessions and every claim still held."""
        try:
            super().abort()
        finally:
            with self._claims_lock:
                claims = list(self._claims)
            for digest in claims:
                self._release(digest)

    def _release(self, digest: Digest) -> None:
        with self._claims_lock:
            if digest not in self._claims:
                return
            self._claims.discard(digest)
        self._ledger.release((self.client.registry, digest))


_LAYOUT_LOCKS: dict[Path, threading.Lock] = {}
_LAYOUT_LOCKS_GUARD = threading.Lock()


def _layout_lock(path: Path) -> threading.Lock:
    with _LAYOUT_LOCKS_GUARD:
        return _LAYOUT_LOCKS.setdefault(path.absolute(), threading.Lock())


class LayoutDestination(OciLayoutDestination):
    """An OCI layout shared by the images of one sync: ``index.json`` updates take turns."""

    def commit(self) -> None:
        """Name the image in ``index.json`` while no other image of this process does."""
        with _layout_lock(self.path):
            super().commit()
