"""``lorry verify IMAGE...``: check local images fully (digests and every layer's DiffID)."""

from __future__ import annotations

import click

from lorry.cli.app import CliContext, cli, pass_context

__all__ = ["verify_cmd"]


@cli.command("verify")
@click.argument("images", nargs=-1, required=True)
@pass_context
def verify_cmd(ctx: CliContext, images: tuple[str, ...]) -> None:
    """Inflate an image's layers and check them against its config's DiffIDs.

    A layer whose content does not match is marked bad (nothing builds on it) and the command
    exits 4, naming the layer and both DiffIDs.

    \b
    Examples:
      lorry verify alpine:3.20
      lorry verify $(lorry images -q)
    """
    from lorry.store import Store
    from lorry.store.inspect import find_image
    from lorry.store.verify import verify_image

    with Store.open(ctx.root) as store:
        for text in images:
            image_id, _ = find_image(store, text)
            report = verify_image(store, image_id)
            click.echo(f"{text}: verified {image_id} ({len(report.layers)} layers)")
