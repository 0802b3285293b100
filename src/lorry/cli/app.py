"""The root ``lorry`` click group and the error boundary that turns errors into one line."""

from __future__ import annotations

import functools
import importlib
import logging
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from lorry._version import __version__
from lorry.cli import heap
from lorry.errors import LorryError, exit_code
from lorry.settings import Settings, load

__all__ = [
    "COMMAND_MODULES",
    "EXIT_CODES",
    "CliContext",
    "cli",
    "pass_context",
    "printable",
    "progress_option",
    "run",
    "tls_options",
]


@dataclass
class CliContext:
    """Options given to the root command, handed to every subcommand."""

    #: Store root: ``--root``, else ``LORRY_ROOT``, else the config file's, else None (default).
    root: Path | None
    debug: bool
    #: Settings from the config file, ``LORRY_*`` variables and the root command's flags.
    settings: Settings = field(default_factory=Settings)


pass_context = click.make_pass_decorator(CliContext)

F = TypeVar("F", bound=Callable[..., Any])

#: The renderers a command moving bytes offers (cli/render.py); every such command takes this.
PROGRESS_MODES = ["auto", "tty", "plain", "json"]


def progress_option(name: str = "progress") -> Callable[[F], F]:
    """``--progress auto|tty|plain|json``, passed to the command as ``name``."""
    return click.option(
        "--progress",
        name,
        type=click.Choice(PROGRESS_MODES),
        default="auto",
        show_default=True,
        help="How progress is shown on stderr.",
    )


def tls_options(command: F) -> F:
    """``--tls-verify=BOOL`` and ``--cert-dir DIR`` as skopeo spells them, for every command
    that talks to a registry; they override this command's settings (lorry.toml's too)."""

    @functools.wraps(command)
    def with_tls(*args: Any, tls_verify: bool | None, cert_dir: Path | None, **kw: Any) -> Any:
        obj = click.get_current_context().find_object(CliContext)
        if obj is not None and (tls_verify is not None or cert_dir is not None):
            obj.settings = obj.settings.with_overrides(tls_verify=tls_verify, cert_dir=cert_dir)
        return command(*args, **kw)

    with_tls = click.option(
        "--cert-dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        metavar="DIR",
        help="Use the *.crt CAs and *.cert/*.key client pair in DIR instead of certs.d.",
    )(with_tls)
    with_tls = click.option(
        "--tls-verify",
        type=click.BOOL,
        default=None,
        metavar="BOOL",
        help="Require HTTPS and verify certificates (default true; false: every registry "
        "is insecure, as with --insecure-registry).",
    )(with_tls)
    return with_tls  # type: ignore[return-value]


#: Which module defines each command: a command's module (and what it imports) loads only when
#: that command runs or help lists them, so ``lorry --version`` starts fast (a test keeps this
#: table equal to the commands the modules define).
COMMAND_MODULES: dict[str, str] = {
    **dict.fromkeys(["save", "load"], "lorry.cli.archive_cmds"),
    "completion": "lorry.cli.completion_cmd",
    "copy": "lorry.cli.copy_cmd",
    "pull": "lorry.cli.pull_cmd",
    "push": "lorry.cli.push_cmd",
    "verify": "lorry.cli.verify_cmd",
    "unpack": "lorry.cli.unpack_cmd",
    "export": "lorry.cli.export_cmd",
    "sync": "lorry.cli.sync_cmd",
    **dict.fromkeys(["login", "logout", "ls", "manifest", "digest"], "lorry.cli.registry_cmds"),
    **dict.fromkeys(["config", "delete", "catalog"], "lorry.cli.remote_cmds"),
    **dict.fromkeys(["images", "inspect", "tag", "rmi", "prune", "fsck"], "lorry.cli.store_cmds"),
}


class _LazyGroup(click.Group):
    """A click group whose commands register themselves when their module is imported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, without importing any command module."""
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing its module first (the module adds it to this group)."""
        module = COMMAND_MODULES.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            importlib.import_module(module)
        heap.freeze_loaded()
        return super().get_command(ctx, cmd_name)


#: The exit codes, shown at the end of ``lorry --help`` (the README has the same table).
EXIT_CODES = """\b
Exit codes:
  0    success
  1    an error of no kind below
  2    bad input: a usage error, a bad reference, option or file
  3    not found: the image, tag, blob or repository does not exist
  4    integrity: bytes that do not match their digest (nothing was kept)
  5    auth: credentials missing or refused
  6    unavailable: the registry or network failed, or stalled
  7    unsupported: a media type, platform or limit lorry does not handle
  8    store: the local store is damaged, full or unwritable
  130  interrupted or cancelled"""


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=EXIT_CODES,
)
@click.version_option(__version__, prog_name="lorry")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Store root directory (default: env LORRY_ROOT, the config's root, the user data dir).",
)
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Configuration file (default: env LORRY_CONFIG, else lorry.toml in the user config dir).",
)
@click.option(
    "--insecure-registry",
    "insecure",
    multiple=True,
    metavar="HOST",
    help="Allow plain HTTP and unverified TLS for this registry host[:port]; repeatable.",
)
@click.option("--debug", is_flag=True, help="Log debug detail to stderr.")
@click.pass_context
def cli(
    ctx: click.Context,
    root: Path | None,
    config: Path | None,
    insecure: tuple[str, ...],
    debug: bool,
) -> None:
    """lorry: pull, push and copy container images, fast, verified and resumable."""
    settings = load(config).with_overrides(root=root, insecure_registries=insecure or None)
    ctx.obj = CliContext(root=settings.root, debug=debug, settings=settings)
    _log_to_stderr(debug)


class _WarningLines(logging.Formatter):
    """Without --debug a log record reads like lorry's error line: ``lorry: warning: …``."""

    def format(self, record: logging.LogRecord) -> str:
        """One line, control characters escaped (a registry's words may be in it)."""
        return f"lorry: {record.levelname.lower()}: {printable(record.getMessage())}"


def _log_to_stderr(debug: bool) -> None:
    """Send log records to stderr (once per process, like ``logging.basicConfig``)."""
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        if debug
        else _WarningLines()
    )
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.WARNING)


def run(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code instead of exiting (for tests)."""
    try:
        # A command that ends with ctx.exit(code) / click.exceptions.Exit comes back as the code.
        code = cli.main(args=argv, prog_name="lorry", standalone_mode=False)
    except LorryError as exc:
        click.echo(f"lorry: error: {_one_line(exc)}", err=True)
        return exit_code(exc)
    except click.exceptions.Abort:
        click.echo("lorry: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("lorry: interrupted", err=True)
        return 130
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "lorry"
        message = printable(" ".join(exc.format_message().split())).rstrip(".")
        click.echo(f"lorry: error: {message}; see '{where} --help'", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"lorry: error: {printable(' '.join(exc.format_message().split()))}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as ``\\xNN``: a registry's words (an error, a
    name) never reach the terminal as escape sequences."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _one_line(exc: BaseException) -> str:
    """The error and the lorry errors that caused it on one line, outermost first.

    A cause that is not a :class:`LorryError` (an ``OSError``, a socket error) is left out: the
    lorry error wrapping it already says what it meant, in words (DESIGN.md §4).
    """
    parts: list[str] = []
    cur: BaseException | None = exc
    while cur is not None and (cur is exc or isinstance(cur, LorryError)):
        text = printable(" ".join(str(cur).split()))
        if text and not any(text in p for p in parts):
            parts.append(text)
        cur = cur.__cause__
    return ": ".join(parts) or type(exc).__name__
