"""Where ``lorry unpack`` finds its image: the store, or any source the copy engine reads.

A bare name (or ``lorry:NAME``) is an image of the store, applied from there. Any other
transport reference (``docker://``, ``oci:``, ``oci-archive:``, ``docker-archive:``) is copied
into the store by the copy engine — what ``lorry copy SRC lorry:NAME`` does, the same progress
and platform choice, but untagged, so an unpack never moves a name the user gave — and each
layer is applied from the store as soon as it is there (:mod:`~lorry.ops.unpack_stream`), each
digest-checked, its DiffID verified while extracting and recorded. One byte path, one set of
checks: nothing here reads a blob itself.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from lorry.digest import Digest
from lorry.errors import NotFoundError
from lorry.ops.unpack import UnpackHooks, UnpackResult, unpack_from_store
from lorry.platform import Platform, matches
from lorry.progress import NullSink, ProgressSink
from lorry.rootfs.idmap import IdMap
from lorry.store.images import parse_config
from lorry.store.inspect import find_image
from lorry.store.store import Store
from lorry.transports import parse_transport

if TYPE_CHECKING:  # the copy engine (anyio, the registry) loads only for a non-store source
    from lorry.settings import Settings

__all__ = ["find_stored", "unpack_image"]


def unpack_image(
    text: str,
    store: Store,
    dest: Path,
    platform: Platform | None = None,
    *,
    settings: Settings | None = None,
    sink: ProgressSink | None = None,
    force: bool = False,
    hooks: UnpackHooks | None = None,
    ids: IdMap | None = None,
) -> UnpackResult:
    """Apply the image ``text`` names to ``dest``: a stored image, or one fetched meanwhile.

    ``platform`` picks the image of an index, as ``lorry copy``'s ``--platform``; a stored
    image must be built for it. ``settings`` give the copy its limits, retries and registry
    options (lorry.toml's defaults when None); ``sink`` hears the copy's lines, ``hooks`` the
    unpack's. Only a non-store source loads the copy engine.
    """
    tref = parse_transport(text)
    if tref.transport == "lorry":
        assert tref.ref is not None
        image_id = find_stored(store, tref.ref, platform)
        return unpack_from_store(store, image_id, dest, force=force, hooks=hooks, ids=ids)
    from lorry.ops.blocking import run_blocking
    from lorry.ops.copy import CopyOptions
    from lorry.ops.settings_bridge import limits, retry_policy, session_options
    from lorry.ops.unpack_stream import fetch_and_unpack
    from lorry.settings import load

    chosen = settings if settings is not None else load()
    opts = CopyOptions(
        platforms=(platform,) if platform else (),
        limits=limits(chosen),
        retry=retry_policy(chosen),
    )
    run = partial(
        fetch_and_unpack,
        tref,
        store,
        dest,
        opts,
        sink=sink or NullSink(),
        session_options=session_options(chosen),
        force=force,
        hooks=hooks,
        ids=ids,
    )
    return run_blocking(run)


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
