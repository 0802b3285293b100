"""``lorry sync [CONFIG]``: mirror repositories as a sync file (docs/sync.md) or flags say.

Mistakes in the file are all reported before any network call, one ``lorry: error:`` line
each (exit 2). Progress goes to stderr: one line per image and destination as it is decided
(plus the layer lines with ``--progress tty``); stdout gets one summary line. ``--report``
writes the JSON summary and ``--digests`` the ``NAME@DIGEST`` list, even when the run fails.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import click

from lorry.cli.app import CliContext, cli, pass_context, printable, progress_option, tls_options
from lorry.cli.render import human_size, make_renderer
from lorry.progress import NullSink, ProgressEvent, ProgressSink

if TYPE_CHECKING:
    from lorry.ops.sync import Entry

__all__ = ["sync_cmd"]


@cli.command("sync")
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--src", "sources", multiple=True, metavar="REF", help="docker://HOST/REPO[:TAG].")
@click.option("--dest", "dests", multiple=True, metavar="REF", help="docker://HOST[/PREFIX].")
@click.option("--tag", "tags", multiple=True, help="With --src: only this tag; repeatable.")
@click.option("--platform", "platforms", multiple=True, help="With --src: keep this platform.")
@click.option("--no-referrers", is_flag=True, help="With --src: leave signatures behind.")
@click.option("--dry-run", is_flag=True, help="Say what would be copied; copy nothing.")
@click.option("--keep-going", is_flag=True, help="Go on after an image fails (exit code says).")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="JSON summary.")
@click.option(
    "--digests", type=click.Path(dir_okay=False, path_type=Path), help="NAME@DIGEST list."
)
@click.option("--shard", metavar="I/N", help="Take only shard I (0-based) of N.")
@click.option("--jobs", type=click.IntRange(min=1), help="Images at once (default: the file's).")
@progress_option()
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr.")
@tls_options
@pass_context
def sync_cmd(  # noqa: PLR0917 - click passes options positionally
    ctx: CliContext,
    config: Path | None,
    sources: tuple[str, ...],
    dests: tuple[str, ...],
    tags: tuple[str, ...],
    platforms: tuple[str, ...],
    no_referrers: bool,
    dry_run: bool,
    keep_going: bool,
    report: Path | None,
    digests: Path | None,
    shard: str | None,
    jobs: int | None,
    progress: Literal["auto", "tty", "plain", "json"],
    quiet: bool,
) -> None:
    """Copy every image a sync file (or --src/--dest) names that the destination lacks.

    \b
    Examples:
      lorry sync mirror.yaml --report out.json
      lorry sync --src docker://r.example/team/app --dest docker://mirror.local:5000/r
      lorry sync mirror.toml --shard 0/3 --keep-going
    """
    from dataclasses import replace

    from lorry.ops.blocking import run_blocking
    from lorry.ops.settings_bridge import limits, retry_policy, session_options, stall_timeout
    from lorry.ops.sync import (
        Shard,
        SyncConfigError,
        SyncOptions,
        SyncReport,
        load_config,
        one_off,
        sync,
    )

    try:
        if config is not None and (sources or dests):
            raise SyncConfigError(["give a sync file or --src/--dest, not both"])
        if config is None:
            if not (sources and dests):
                raise SyncConfigError(["need a sync file, or --src and --dest"])
            cfg = one_off(
                sources, dests, tags=tags, platforms=platforms, referrers=not no_referrers
            )
        elif tags or platforms or no_referrers:
            raise SyncConfigError(["--tag, --platform and --no-referrers go with --src"])
        else:
            cfg = load_config(config)
    except SyncConfigError as exc:
        for problem in exc.problems:
            click.echo(f"lorry: error: {printable(problem)}", err=True)
        ctx_exit(2)
        return
    parts = Shard.parse(shard) if shard else None
    if jobs is not None:
        cfg = replace(cfg, jobs=jobs)
    sink: ProgressSink = NullSink() if quiet else make_renderer(progress, sys.stderr)
    tty = not quiet and (progress == "tty" or (progress == "auto" and sys.stderr.isatty()))
    settings = ctx.settings
    options = SyncOptions(
        dry_run=dry_run,
        keep_going=keep_going,
        shard=parts,
        limits=limits(settings),
        retry=retry_policy(settings),
        stall_timeout=stall_timeout(settings),
        session=session_options(settings),
    )
    out = SyncReport()

    def said(entry: Entry) -> None:
        sink.emit(ProgressEvent(status=_line(entry), is_message=True))

    try:
        run_blocking(
            lambda: sync(cfg, options, on_entry=said, layer_sink=sink if tty else None, report=out)
        )
    finally:
        if report is not None:
            out.write(report)
        if digests is not None:
            digests.write_text("".join(f"{line}\n" for line in out.digest_lines()))
    s = out.summary()
    click.echo(
        f"{s['copied']} copied, {s['unchanged']} unchanged, {s['would_copy']} to copy, "
        f"{s['failed']} failed, {human_size(s['bytes'])} sent"
    )
    if out.errors:
        first = out.errors[0]
        n = len(out.failed)
        raise type(first)(f"{n} image{'s' if n != 1 else ''} failed; the first: {first}")


def ctx_exit(code: int) -> None:
    """End the command with ``code`` (the error lines are already out)."""
    raise click.exceptions.Exit(code)


def _line(entry: Entry) -> str:
    """One progress line for a decided image: action, source → destination, digest, bytes."""
    digest = entry.destination_digest or entry.source_digest or ""
    tail = f" {digest}" if digest else ""
    if entry.action == "copied":
        tail += f" ({human_size(entry.bytes)} sent)"
    if entry.error:
        tail += f": {entry.error}"
    return f"{entry.action} {entry.source} -> {entry.destination}{tail}"
