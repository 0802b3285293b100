"""``lorry copy SRC DST``: an image between any two transports, as ``skopeo copy`` does.

Transports: ``docker://REF``, ``oci:PATH[:REF]``, ``oci-archive:PATH[:REF]``,
``docker-archive:PATH[:REF]`` and ``lorry:REF`` (the local store, ``--root``). Progress goes
to stderr through the chosen renderer; the digest of what was written goes to stdout (and to
``--digestfile``).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

import click

from lorry.cli.app import CliContext, cli, pass_context, progress_option, tls_options
from lorry.cli.render import make_renderer
from lorry.platform import Platform
from lorry.progress import NullSink, ProgressSink
from lorry.store import Store
from lorry.store.fsutil import atomic_write

__all__ = ["copy_cmd"]


@cli.command("copy")
@click.argument("source")
@click.argument("destination")
@click.option("--all", "all_platforms", is_flag=True, help="Copy the index and every image.")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    help="An image of an index to copy (default: this host's); repeat for a subset.",
)
@click.option(
    "--preserve-digests",
    is_flag=True,
    help="Fail, before any write, where the destination would need a changed document.",
)
@click.option(
    "--digestfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the digest of the copied manifest (or index) to this file.",
)
@progress_option()
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@tls_options
@pass_context
def copy_cmd(  # noqa: PLR0917 - click passes options positionally
    ctx: CliContext,
    source: str,
    destination: str,
    all_platforms: bool,
    platforms: tuple[str, ...],
    preserve_digests: bool,
    digestfile: Path | None,
    progress: Literal["auto", "tty", "plain", "json"],
    quiet: bool,
) -> None:
    """Copy the image SOURCE names to DESTINATION; print its digest.

    \b
    Examples:
      lorry copy docker://alpine:3.20 oci:./alpine:3.20
      lorry copy --all docker://r.example/app:1 docker://mirror.local:5000/app:1
      lorry copy lorry:app:1 docker-archive:app.tar:app:1
    """
    from lorry.ops.copy import CopyOptions, copy_sync  # here, not at import: start-up time
    from lorry.ops.settings_bridge import (  # here, not at import: start-up time
        limits,
        retry_policy,
        session_options,
    )

    sink: ProgressSink = NullSink() if quiet else make_renderer(progress, sys.stderr)
    options = CopyOptions(
        platforms=tuple(Platform.parse(p) for p in platforms),
        all_platforms=all_platforms,
        preserve_digests=preserve_digests,
        limits=limits(ctx.settings),
        retry=retry_policy(ctx.settings),
    )
    with ExitStack() as stack:
        # The store is opened only when a side is lorry: (a copy between registries and files
        # creates no store).
        local = any(t.startswith("lorry:") for t in (source, destination))
        store = stack.enter_context(Store.open(ctx.root)) if local else None
        result = copy_sync(
            source,
            destination,
            options,
            sink=sink,
            session_options=session_options(ctx.settings),
            store=store,
        )
    if digestfile is not None:
        atomic_write(digestfile, f"{result.digest}\n".encode())
    click.echo(str(result.digest))
