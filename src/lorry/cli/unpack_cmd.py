"""``lorry unpack IMAGE DIR``: a stored image's root filesystem, applied safely (docs/unpack.md)."""

from __future__ import annotations

from pathlib import Path

import click

from lorry.cli.app import CliContext, cli, pass_context

__all__ = ["unpack_cmd"]


@cli.command("unpack")
@click.argument("image")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Apply on top of a non-empty or unfinished DIR.")
@click.option("-q", "--quiet", is_flag=True, help="No per-layer lines on stderr.")
@pass_context
def unpack_cmd(ctx: CliContext, image: str, directory: Path, force: bool, quiet: bool) -> None:
    """Apply a stored image's layers to DIR, checking each layer's DiffID as it is inflated.

    Nothing is written outside DIR: a layer that names a path through a symlink or with '..'
    fails the unpack. A layer whose content does not match its DiffID is marked bad and the
    command exits 4; DIR is then marked unfinished until an unpack with --force completes it.

    \b
    Examples:
      lorry unpack alpine:3.20 ./rootfs
      lorry unpack --force alpine:3.20 ./rootfs
    """
    from lorry.ops.unpack import unpack_from_store
    from lorry.store import Store
    from lorry.store.inspect import find_image
    from lorry.store.layers import Layer

    def extracted(layer: Layer) -> None:
        if not quiet:
            click.echo(f"{layer.blob_digest.encoded[:12]}: Pull complete", err=True)

    with Store.open(ctx.root) as store:
        image_id, _ = find_image(store, image)
        result = unpack_from_store(store, image_id, directory, force=force, on_layer=extracted)
    for warning in result.warnings:
        click.echo(f"lorry: warning: {warning}", err=True)
    click.echo(f"{image}: unpacked {result.image_id} ({result.layers} layers) into {directory}")
