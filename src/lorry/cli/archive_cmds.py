"""``lorry save`` and ``lorry load``: local images to and from a docker-archive, like docker.

``save IMAGE... -o FILE`` writes one archive (``-o -``: to stdout, and nothing else goes there);
``load -i FILE`` (``-i -``: from stdin) prints ``Loaded image: NAME`` per tag, or ``Loaded
image ID: sha256:…`` for an untagged image. Progress, when shown, goes to stderr.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from lorry.cli.app import CliContext, cli, pass_context
from lorry.progress import NullSink
from lorry.store import Store

__all__ = ["load_cmd", "save_cmd"]


@cli.command("save")
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--output", required=True, help="The archive to write ('-': stdout).")
@pass_context
def save_cmd(ctx: CliContext, images: tuple[str, ...], output: str) -> None:
    """Save local IMAGES to a docker-archive (what docker load reads).

    \b
    Examples:
      lorry save -o app.tar app:1 app:2
      lorry save -o - app:1 | docker load
    """
    from lorry.ops.archive import save_sync  # here, not at import: start-up time

    with Store.open(ctx.root) as store:
        if output != "-":
            save_sync(list(images), Path(output), store=store, sink=NullSink())
            return
        with tempfile.TemporaryDirectory(prefix="lorry-save-") as tmp:
            path = Path(tmp) / "image.tar"
            save_sync(list(images), path, store=store, sink=NullSink())
            with path.open("rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()


@cli.command("load")
@click.option("-i", "--input", "source", required=True, help="The archive to read ('-': stdin).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing.")
@pass_context
def load_cmd(ctx: CliContext, source: str, quiet: bool) -> None:
    """Load the images of a docker-archive (what docker save writes) into the store.

    \b
    Examples:
      lorry load -i app.tar
      docker save app:1 | lorry load -i -
    """
    from lorry.ops.archive import load_sync  # here, not at import: start-up time

    with Store.open(ctx.root) as store, tempfile.TemporaryDirectory(prefix="lorry-load-") as tmp:
        path = Path(source)
        if source == "-":
            path = Path(tmp) / "stdin.tar"
            with path.open("wb") as f:
                shutil.copyfileobj(sys.stdin.buffer, f, 1 << 20)
        loaded = load_sync(path, store=store, sink=NullSink())
    if quiet:
        return
    for image in loaded:
        for tag in image.tags:
            click.echo(f"Loaded image: {tag}")
        if not image.tags:
            click.echo(f"Loaded image ID: {image.image_id}")
