"""``lorry pull``: fetch an image from a registry into the local store, docker-style.

Progress goes to **stderr** (``--progress``: ``tty`` redraws one line per layer, ``plain`` writes
one line per status change without control codes, ``json`` writes the Docker Engine JSON message
stream, ``auto`` picks tty on a terminal, else plain). **stdout** gets nothing but the fully
qualified reference of what was pulled (one line per tag with ``--all-tags``), as ``docker pull``
ends; ``-q`` silences the progress. With ``--progress json`` a failure is reported in the stream
as an ``errorDetail`` message (the exit code still says what kind of failure it was).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal

import click

from lorry.cli.app import CliContext, cli, pass_context, progress_option, tls_options
from lorry.cli.render import make_renderer
from lorry.errors import LorryError, exit_code
from lorry.progress import NullSink, ProgressEvent, ProgressSink
from lorry.reference import parse
from lorry.store import Store

if TYPE_CHECKING:
    from lorry.ops.pull import PullResult

__all__ = ["pull_cmd"]

ProgressMode = Literal["auto", "tty", "plain", "json"]


def _message(exc: BaseException) -> str:
    """The error and its causes on one line, without repeats."""
    parts: list[str] = []
    cur: BaseException | None = exc
    while cur is not None:
        text = " ".join(str(cur).split())
        if text and not any(text in p for p in parts):
            parts.append(text)
        cur = cur.__cause__
    return ": ".join(parts) or type(exc).__name__


def _pulled(result: PullResult) -> list[str]:
    """The fully qualified references a pull leaves behind, for stdout."""
    return [str(r.reference) for r in result.tags] or [str(result.reference)]


@cli.command("pull")
@click.argument("reference")
@click.option("--platform", help="Pick this os/arch[/variant] from a multi-platform image.")
@click.option(
    "--all-platforms", is_flag=True, help="Pull every platform of a multi-platform image."
)
@click.option("-a", "--all-tags", is_flag=True, help="Pull every tag of the repository.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@progress_option("mode")
@click.option(
    "--max-concurrent-downloads",
    "downloads",
    type=click.IntRange(min=0),
    help="Layers downloaded at once (0: unlimited; default: the config's, else 3).",
)
@click.option(
    "--verify-diffids",
    "verify_diffids",
    is_flag=True,
    default=None,
    help="Inflate each layer now and check it against the config's DiffIDs (default: the "
    "config's setting, else checked where layers are inflated: verify, fsck --deep).",
)
@tls_options
@pass_context
def pull_cmd(
    ctx: CliContext,
    *,
    reference: str,
    platform: str | None,
    all_platforms: bool,
    all_tags: bool,
    quiet: bool,
    mode: ProgressMode,
    downloads: int | None,
    verify_diffids: bool | None,
) -> None:
    """Pull an image (or every tag of a repository) from a registry into the store.

    \b
    Examples:
      lorry pull alpine:3.20
      lorry pull --platform linux/arm64 localhost:5000/app:1
      lorry pull --all-tags localhost:5000/app
    """
    from lorry.ops.settings_bridge import (
        pull_with_settings_sync,
    )  # here, not at import: start-up time

    sink: ProgressSink = NullSink() if quiet else make_renderer(mode, sys.stderr)
    if not all_tags and parse(reference).is_name_only:
        sink.emit(ProgressEvent(status="Using default tag: latest", is_message=True))
    with Store.open(ctx.root) as store:
        try:
            result = pull_with_settings_sync(
                reference,
                store=store,
                settings=ctx.settings.with_overrides(
                    max_concurrent_downloads=downloads, verify_diffids=verify_diffids or None
                ),
                platform=platform,
                all_platforms=all_platforms,
                all_tags=all_tags,
                sink=sink,
            )
        except LorryError as exc:
            if mode != "json" or quiet:
                raise
            sink.emit(ProgressEvent(error=_message(exc)))
            raise click.exceptions.Exit(exit_code(exc)) from exc
    for line in _pulled(result):
        click.echo(line)
