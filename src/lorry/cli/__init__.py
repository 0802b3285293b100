"""The ``lorry`` command line: the only package that prints, and the only one that uses click.

Each command lives in its own module and attaches itself to :data:`lorry.cli.app.cli` when
imported; :data:`lorry.cli.app.COMMAND_MODULES` says which module to import for a command, so a
run loads only the command it runs.
"""

from __future__ import annotations

import sys

from lorry.cli.app import cli, run

__all__ = ["cli", "main", "run"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
