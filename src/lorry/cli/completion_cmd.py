"""``lorry completion SHELL``: the shell's completion script, printed for the user to source."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from lorry.cli.app import cli

__all__ = ["completion_cmd"]


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_cmd(shell: str) -> None:
    """Print the completion script for SHELL (commands, options, file names).

    \b
    Examples:
      lorry completion bash > ~/.local/share/bash-completion/completions/lorry
      eval "$(lorry completion zsh)"
      lorry completion fish > ~/.config/fish/completions/lorry.fish
    """
    complete = get_completion_class(shell)
    assert complete is not None  # the Choice admits only shells click knows
    click.echo(complete(cli, {}, "lorry", "_LORRY_COMPLETE").source())
