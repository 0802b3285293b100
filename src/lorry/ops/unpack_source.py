"""Where ``lorry unpack`` finds its image: the store, or any source the copy engine reads.

A bare name (or ``lorry:NAME``) is an image of the store. Any other transport reference
(``docker://``, ``oci:``, ``oci-archive:``, ``docker-archive:``) is first copied into the store
by the copy engine — what ``lorry copy SRC lorry:NAME`` does, the same progress and platform
choice, but untagged, so an unpack never moves a name the user gave — and the unpack then reads
the store as it always does (each layer digest-checked, its DiffID verified while extracting
and recorded). One byte path, one set of checks: nothing here reads a blob itself.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from lorry.digest import Digest
from lorry.errors import NotFoundError
from lorry.platform import Platform, matches
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.store.images import parse_config
from lorry.store.inspect import find_image
from lorry.store.store import Store
from lorry.transfer.statuses import EXTRACTING, PULL_COMPLETE
from lorry.transports import TransportRef, parse_transport

if TYPE_CHECKING:  # the copy engine (anyio, the registry) loads only for a non-store source
    from lorry.ops.copy import CopyOptions
    from lorry.ops.session import SessionOptions
    from lorry.settings import Settings

__all__ = ["find_stored", "image_to_unpack", "stored_copy"]


def image_to_unpack(
    text: str,
    store: Store,
    platform: Platform | None = None,
    *,
    settings: Settings | None = None,
    sink: ProgressSink | None = None,
) -> Digest:
    """The store's image ID for ``text``: a stored image, or one the copy engine just stored.

    ``platform`` picks the image of an index, as ``lorry copy``'s ``--platform``; a stored
    image must be built for it. ``settings`` give the copy its limits, retries and registry
    options (lorry.toml's defaults when None). Only a non-store source loads the copy engine.
    """
    tref = parse_transport(text)
    if tref.transport == "lorry":
        assert tref.ref is not None
        return find_stored(store, tref.ref, platform)
    from lorry.ops.blocking import run_blocking
    from lorry.ops.copy import CopyOptions
    from lorry.ops.settings_bridge import limits, retry_policy, session_options
    from lorry.settings import load

    chosen = settings if settings is not None else load()
    opts = CopyOptions(
        platforms=(platform,) if platform else (),
        limits=limits(chosen),
        retry=retry_policy(chosen),
    )
    sessions = session_options(chosen)
    return run_blocking(
        partial(stored_copy, tref, store, opts, sink=sink, session_options=sessions)
    )


def find_stored(store: Store, name: str, platform: Platform | None = None) -> Digest:
    """The stored image ``name`` names; with ``platform``, refuse one built for another."""
    image_id, _ = find_image(store, name)
    if platform is not None:
        config = parse_config(store.content.read_bytes(image_id), f"image config {image_id}")
        actual = Platform.from_dict(config, f"image config {image_id}").normalize()
        if not matches(platform, actual):
            raise NotFoundError(
                f"{name}: the stored image {image_id.short} is {actual}, not {platform}"
            )
    return image_id


async def stored_copy(
    tref: TransportRef,
    store: Store,
    options: CopyOptions,
    *,
    sink: ProgressSink | None = None,
    session_options: SessionOptions | None = None,
) -> Digest:
    """Copy the image ``tref`` names into ``store``, untagged; return its image ID."""
    from lorry.ops.copy import Flow, copy_image
    from lorry.ops.copy_endpoints import open_source
    from lorry.ops.session import lease_session
    from lorry.transports.store import StoreDestination

    lease = lease_session(None, session_options)
    try:
        source = open_source(tref, lease.session, store)
        try:
            dest = StoreDestination(store, None, tref.text)
            lines = _FetchLines(sink or NullSink())
            await copy_image(source, dest, options, sink=lines, flow=Flow(lease=lease))
        finally:
            source.close()
    finally:
        lease.release()
    return dest.images[0].id  # one platform was chosen: the copy stored one image


class _FetchLines:
    """The copy's progress without its ``Extracting`` / ``Pull complete`` lines.

    Into the store those words mean "registered"; the unpack says them when the layer's files
    are really in DIR, so each layer ends with one ``Pull complete``, as ``docker pull`` shows.
    """

    def __init__(self, sink: ProgressSink) -> None:
        self.sink = sink

    def emit(self, event: ProgressEvent) -> None:
        """Pass the event on unless it is a layer's registration step."""
        if event.is_message or event.status not in (EXTRACTING, PULL_COMPLETE):
            self.sink.emit(event)
