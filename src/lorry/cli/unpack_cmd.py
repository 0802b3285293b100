"""``lorry unpack SOURCE DIR``: an image's root filesystem, applied safely (docs/unpack.md).

SOURCE is a stored image (a bare name or ``lorry:NAME``) or any source ``lorry copy`` reads
(``docker://``, ``oci:``, ``oci-archive:``, ``docker-archive:``), which is copied into the
store while its layers are applied from there, each as soon as it has arrived; DiffIDs are
checked on the way.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from lorry.cli.app import CliContext, cli, pass_context, progress_option, tls_options

if TYPE_CHECKING:
    from lorry.progress import ProgressSink

__all__ = ["unpack_cmd"]


@cli.command("unpack")
@click.argument("image")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Apply on top of a non-empty or unfinished DIR.")
@click.option(
    "--platform",
    help="The image of an index to unpack (default: this host's), as in copy.",
)
@progress_option()
@click.option(
    "--uid-map",
    "uid_map",
    multiple=True,
    metavar="CONTAINER:HOST:SIZE",
    help="As root: owners shifted into this range (umoci's syntax); repeatable.",
)
@click.option(
    "--gid-map",
    "gid_map",
    multiple=True,
    metavar="CONTAINER:HOST:SIZE",
    help="As root: groups shifted into this range; repeatable.",
)
@click.option("-q", "--quiet", is_flag=True, help="No per-layer lines on stderr.")
@tls_options
@pass_context
def unpack_cmd(  # noqa: PLR0917 - click passes options positionally
    ctx: CliContext,
    image: str,
    directory: Path,
    force: bool,
    platform: str | None,
    progress: Literal["auto", "tty", "plain", "json"],
    uid_map: tuple[str, ...],
    gid_map: tuple[str, ...],
    quiet: bool,
) -> None:
    """Apply IMAGE's layers to DIR, checking each layer's DiffID as it is inflated.

    IMAGE is a stored image, or any source copy reads (docker://, oci:, oci-archive:,
    docker-archive:), which is copied into the store (untagged) while each layer that has
    arrived is applied. Nothing is written
    outside DIR: a layer that names a path through a symlink or with '..' fails the unpack.
    A layer whose content does not match its DiffID is marked bad and the command exits 4;
    DIR is then marked unfinished until an unpack with --force completes it. DIR is not
    touched when IMAGE cannot be read.

    \b
    Examples:
      lorry unpack alpine:3.20 ./rootfs
      lorry unpack --platform linux/arm64 docker://alpine:3.20 ./rootfs
      lorry unpack oci:./layout:v1 ./rootfs
      lorry unpack --force alpine:3.20 ./rootfs
      lorry unpack --uid-map 0:100000:65536 --gid-map 0:100000:65536 alpine:3.20 ./r
    """
    # here, not at import: start-up time (the copy engine loads only for a non-store source)
    from lorry.cli.render import make_renderer
    from lorry.errors import InvalidInputError
    from lorry.ops.unpack import UnpackHooks, check_destination
    from lorry.ops.unpack_source import unpack_image
    from lorry.platform import Platform
    from lorry.progress import NullSink, ProgressEvent
    from lorry.rootfs.idmap import IdMap, parse_ranges
    from lorry.store import Store
    from lorry.store.layers import Layer
    from lorry.transfer.statuses import EXTRACTING, PULL_COMPLETE

    sink: ProgressSink = NullSink() if quiet else make_renderer(progress, sys.stderr)

    def extracting(layer: Layer, done: int = 0) -> None:
        event = ProgressEvent(
            id=layer.blob_digest.short, status=EXTRACTING, current=done, total=layer.blob_size
        )
        sink.emit(event)

    def extracted(layer: Layer) -> None:
        sink.emit(ProgressEvent(id=layer.blob_digest.short, status=PULL_COMPLETE))

    ids = IdMap(parse_ranges(uid_map, "--uid-map"), parse_ranges(gid_map, "--gid-map"))
    if (ids.uids or ids.gids) and os.geteuid() != 0:
        raise InvalidInputError("unpack: --uid-map/--gid-map need root (otherwise files are yours)")
    wanted = Platform.parse(platform) if platform else None
    check_destination(directory, force)  # before any fetch: a refused DIR costs nothing
    hooks = UnpackHooks(on_start=extracting, on_bytes=extracting, on_layer=extracted)
    with Store.open(ctx.root) as store, store.hold():  # no prune between copy and unpack
        result = unpack_image(
            image,
            store,
            directory,
            wanted,
            settings=ctx.settings,
            sink=sink,
            force=force,
            hooks=hooks,
            ids=ids,
        )
    for warning in result.warnings:
        click.echo(f"lorry: warning: {warning}", err=True)
    click.echo(f"{image}: unpacked {result.image_id} ({result.layers} layers) into {directory}")
