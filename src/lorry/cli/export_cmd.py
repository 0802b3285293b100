"""``lorry export IMAGE -o FILE``: a stored image's flattened filesystem as one tar."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from lorry.cli.app import CliContext, cli, pass_context

__all__ = ["export_cmd"]


@cli.command("export")
@click.argument("image")
@click.option(
    "-o", "--output", required=True, metavar="FILE", help="Where the tar goes ('-': stdout)."
)
@pass_context
def export_cmd(ctx: CliContext, image: str, output: str) -> None:
    """Write the image's root filesystem, whiteouts applied, as one tar (as crane export).

    \b
    Examples:
      lorry export alpine:3.20 -o rootfs.tar
      lorry export alpine:3.20 -o - | tar -t
    """
    from lorry.ops.export import export_from_store, export_to_file
    from lorry.store import Store
    from lorry.store.inspect import find_image

    with Store.open(ctx.root) as store:
        image_id, _ = find_image(store, image)
        if output == "-":
            export_from_store(store, image_id, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        export_to_file(store, image_id, Path(output))
