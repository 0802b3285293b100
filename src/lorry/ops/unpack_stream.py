"""``lorry unpack`` from a source outside the store: layers applied while the rest are fetched.

The copy engine copies the image into the store (untagged) as ``lorry copy SRC lorry:`` would,
with its own download manager whose layer store announces every layer the copy may build on
the moment it is known — found sound ("Already exists") or just registered, which the
download manager does bottom→top as fetches finish. A worker thread applies the announced
layers in order from the store (:func:`~lorry.ops.unpack.apply_layers`: digest checked again
as read, DiffID verified while extracting), so extracting layer N overlaps the fetch of the
layers above it. When the copy commits, the image's stored chain is the last word: whatever
was not announced (an image already complete in the store) is applied from it.

A failed fetch stops the applier at the next layer boundary and is the error reported; a
failed layer cancels the copy (its complete blobs stay for the next attempt). Either way DIR
keeps its incomplete marker, as any failed unpack.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from lorry.digest import ChainID, Digest
from lorry.errors import LorryError, StoreError
from lorry.ops.copy import CopyOptions, Flow, copy_image
from lorry.ops.copy_endpoints import open_source
from lorry.ops.layer_chain import download_manager
from lorry.ops.session import SessionOptions, lease_session
from lorry.ops.unpack import UnpackHooks, UnpackResult, apply_layers
from lorry.progress import ProgressEvent, ProgressSink
from lorry.rootfs.idmap import IdMap
from lorry.store.layers import Layer
from lorry.store.store import Store
from lorry.transfer.statuses import EXTRACTING, PULL_COMPLETE
from lorry.transports import TransportRef
from lorry.transports.store import StoreDestination

__all__ = ["LayerArrivals", "fetch_and_unpack"]


class _CopyStoppedError(LorryError):
    """The copy failed or was cancelled: its own error is the one reported (this never is)."""


class LayerArrivals:
    """Layers announced by a copy into the store, handed out bottom→top as they arrive.

    Announcements come from worker threads, keyed by their parent's ChainID (one image's chain
    is linear, so each parent has one child here); :meth:`finish` gives the committed image's
    chain, :meth:`fail` stops a waiting reader.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._by_parent: dict[ChainID | None, Layer] = {}
        self._final: tuple[Digest, list[Layer]] | None = None
        self._stopped = False

    def announce(self, layer: Layer) -> None:
        """A layer of the copy is in the store (called from a worker thread)."""
        with self._cond:
            self._by_parent.setdefault(layer.parent, layer)
            self._cond.notify_all()

    def finish(self, image_id: Digest, chain: list[Layer]) -> None:
        """The copy committed: the image and its whole chain, bottom→top."""
        with self._cond:
            self._final = (image_id, chain)
            self._cond.notify_all()

    def fail(self) -> None:
        """The copy will announce nothing more."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def image_id(self) -> Digest:
        """The committed image (after :meth:`finish`)."""
        assert self._final is not None
        return self._final[0]

    def layers(self) -> Iterator[Layer]:
        """Each layer of the image bottom→top, waiting for it to be announced; ends at the
        committed chain's top. Raises :class:`_CopyStoppedError` when the copy failed first."""
        applied: list[ChainID] = []
        while True:
            layer, chain = self._next(applied[-1] if applied else None)
            if chain is not None:
                if [x.chain_id for x in chain[: len(applied)]] != applied:
                    raise StoreError(
                        "internal error: the unpacked layers are not the stored image's chain"
                    )
                yield from chain[len(applied) :]
                return
            assert layer is not None
            applied.append(layer.chain_id)
            yield layer

    def _next(self, parent: ChainID | None) -> tuple[Layer | None, list[Layer] | None]:
        """The layer on ``parent`` once announced, or the final chain once committed."""
        with self._cond:
            while True:
                if self._final is not None:
                    return None, self._final[1]
                if self._stopped:
                    raise _CopyStoppedError("unpack: the copy stopped before this layer arrived")
                layer = self._by_parent.get(parent)
                if layer is not None:
                    return layer, None
                self._cond.wait()


async def fetch_and_unpack(
    tref: TransportRef,
    store: Store,
    dest: Path,
    options: CopyOptions,
    *,
    sink: ProgressSink,
    session_options: SessionOptions | None = None,
    force: bool = False,
    hooks: UnpackHooks | None = None,
    ids: IdMap | None = None,
) -> UnpackResult:
    """Copy ``tref``'s image into ``store`` (untagged) and apply it to ``dest`` as it arrives.

    ``sink`` hears the copy's lines (its registration steps left out: the unpack's own
    ``Extracting`` / ``Pull complete`` come through ``hooks``).
    """
    arrivals = LayerArrivals()
    failures: list[Exception] = []
    applied: list[tuple[int, list[str]]] = []
    apply = partial(apply_layers, store, arrivals.layers(), dest, force=force, hooks=hooks, ids=ids)
    lease = lease_session(None, session_options)
    try:
        source = open_source(tref, lease.session, store)
        try:
            into = StoreDestination(store, None, tref.text)
            downloads = download_manager(
                store, limits=options.limits, retry=options.retry, on_layer=arrivals.announce
            )
            async with downloads, anyio.create_task_group() as tg:

                async def fetch() -> None:
                    try:
                        await copy_image(
                            source,
                            into,
                            options,
                            sink=_FetchLines(sink),
                            flow=Flow(lease=lease),
                            downloads=downloads,
                        )
                        image = into.images[0]  # one platform was chosen: one image
                        chain = await anyio.to_thread.run_sync(store.layers.chain, image.top_layer)
                        arrivals.finish(image.id, chain)
                    except Exception as exc:  # reported below: anyio would wrap it in a group
                        failures.append(exc)
                        arrivals.fail()
                    except BaseException:  # cancelled: the applier failed, or the caller
                        arrivals.fail()
                        raise

                tg.start_soon(fetch)
                try:
                    applied.append(await anyio.to_thread.run_sync(apply))
                except _CopyStoppedError:
                    pass  # the copy's error, in ``failures``, is the one to report
                except Exception as exc:
                    failures.insert(0, exc)
                    tg.cancel_scope.cancel()
        finally:
            source.close()
    finally:
        lease.release()
    if failures:
        raise failures[0]
    ((count, warnings),) = applied
    return UnpackResult(arrivals.image_id, count, warnings)


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
