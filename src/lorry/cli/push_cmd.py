"""``lorry push``: send a local image to a registry, with Docker's progress output.

Progress goes to stderr through the chosen renderer (``--progress``), ending with Docker's
``<tag>: digest: sha256:… size: N`` line. ``-q`` silences the progress and prints only
``name:tag@digest`` on stdout, for scripts.
"""

from __future__ import annotations

import sys
from typing import Literal

import click

from lorry.cli.app import CliContext, cli, pass_context, progress_option, tls_options
from lorry.cli.render import make_renderer
from lorry.progress import NullSink, ProgressSink
from lorry.store import Store

__all__ = ["push_cmd"]


@cli.command("push")
@click.argument("source")
@click.argument("target", required=False)
@progress_option()
@click.option("-q", "--quiet", is_flag=True, help="No progress; print name:tag@digest on stdout.")
@click.option(
    "--chunked/--monolithic",
    default=None,
    help="Always upload in PATCH chunks / always in one PUT "
    "(default: one PUT, chunks when the registry refuses it).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    default=4 * 1024 * 1024,  # lorry.registry.uploads.DEFAULT_CHUNK_SIZE (a test checks)
    show_default=True,
    help="Bytes per PATCH for chunked uploads.",
)
@click.option(
    "--max-concurrent-uploads",
    type=click.IntRange(min=0),
    help="Layers uploaded at once (0: unlimited; default: the config's, else 5).",
)
@click.option(
    "--allow-nondistributable-artifacts",
    "allow_nondist",
    multiple=True,
    metavar="REGISTRY",
    help="Also push foreign (non-distributable) layers to this registry; repeatable.",
)
@tls_options
@pass_context
def push_cmd(  # noqa: PLR0917 - click passes options positionally
    ctx: CliContext,
    source: str,
    target: str | None,
    progress: Literal["auto", "tty", "plain", "json"],
    quiet: bool,
    chunked: bool | None,
    chunk_size: int,
    max_concurrent_uploads: int | None,
    allow_nondist: tuple[str, ...],
) -> None:
    """Push SOURCE (a local image) to the registry its name names, or to TARGET.

    \b
    Examples:
      lorry push localhost:5000/app:1
      lorry push app:1 r.example/team/app:1
    """
    from lorry.ops.settings_bridge import (
        push_with_settings_sync,
    )  # here, not at import: start-up time

    sink: ProgressSink = NullSink() if quiet else make_renderer(progress, sys.stderr)
    with Store.open(ctx.root) as store:
        result = push_with_settings_sync(
            source,
            target,
            store=store,
            settings=ctx.settings.with_overrides(max_concurrent_uploads=max_concurrent_uploads),
            sink=sink,
            chunked=chunked,
            chunk_size=chunk_size,
            allow_nondistributable=allow_nondist,
        )
    if quiet:
        click.echo(f"{result.reference}@{result.manifest_digest}")
