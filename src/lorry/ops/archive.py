"""``save`` and ``load``: local images to and from a docker-archive, as docker does them.

Both are copies through the one engine (:func:`~lorry.ops.copy.copy_image`): ``save`` copies
each named local image into one :class:`DockerArchiveDestination` (every image with its tag in
``RepoTags``) and commits the archive once, atomically; ``load`` copies every image of the
archive into the store and tags it with each of its RepoTags.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.ops.blocking import run_blocking
from lorry.ops.copy import CopyOptions, copy_image
from lorry.progress import ProgressSink
from lorry.reference import parse_docker_ref
from lorry.store import Store
from lorry.store.inspect import find_image
from lorry.transports.docker_archive import DockerArchiveDestination, DockerArchiveSource
from lorry.transports.store import StoreDestination, StoreSource

__all__ = ["LoadedImage", "load", "load_sync", "save", "save_sync"]


@dataclass(frozen=True)
class LoadedImage:
    """One image a load stored: its ID and the tags it got (none for an untagged image)."""

    image_id: Digest
    tags: tuple[str, ...]


def _tag_of(store: Store, name: str) -> str | None:
    """The tag to write in RepoTags for a local name (None for an image ID)."""
    _, ref = find_image(store, name)
    if ref is None or ref.tag is None:
        return None
    return parse_docker_ref(f"{ref.name}:{ref.tag}").familiar


async def save(
    images: Sequence[str],
    output: Path,
    *,
    store: Store,
    options: CopyOptions | None = None,
    sink: ProgressSink | None = None,
) -> None:
    """Write the local ``images`` into one docker-archive at ``output`` (atomically)."""
    if not images:
        raise InvalidInputError("save: name at least one image")
    tags = [await anyio.to_thread.run_sync(_tag_of, store, name) for name in images]
    dest = DockerArchiveDestination(output, tags[0], f"docker-archive:{output}")
    for i, (name, tag) in enumerate(zip(images, tags, strict=True)):
        if i:
            dest.next_image(tag)
        source = StoreSource(store, name, name)
        try:
            await copy_image(source, dest, options, sink=sink, commit=False)
        finally:
            source.close()
    await anyio.to_thread.run_sync(dest.commit)


async def load(
    archive: Path,
    *,
    store: Store,
    options: CopyOptions | None = None,
    sink: ProgressSink | None = None,
) -> list[LoadedImage]:
    """Store every image of the docker-archive ``archive``; tag each with its RepoTags."""
    probe = await anyio.to_thread.run_sync(DockerArchiveSource, archive, "@0", str(archive))
    repo_tags = probe.repo_tags
    probe.close()
    loaded: list[LoadedImage] = []
    for i, tags in enumerate(repo_tags):
        source = DockerArchiveSource(archive, f"@{i}", f"docker-archive:{archive}:@{i}")
        dest = StoreDestination(store, tags[0] if tags else None, f"lorry:{archive}@{i}")
        try:
            await copy_image(source, dest, options, sink=sink)
        finally:
            source.close()
        image = dest.images[0]
        for extra in tags[1:]:
            ref = parse_docker_ref(extra)
            await anyio.to_thread.run_sync(
                partial(store.refs.add_tag, ref.name, ref.tag or "latest", image.id)
            )
        loaded.append(LoadedImage(image.id, tags))
    return loaded


def save_sync(images: Sequence[str], output: Path, **kw: Any) -> None:
    """:func:`save` for synchronous callers."""
    run_blocking(partial(save, images, output, **kw))


def load_sync(archive: Path, **kw: Any) -> list[LoadedImage]:
    """:func:`load` for synchronous callers."""
    return run_blocking(partial(load, archive, **kw))
