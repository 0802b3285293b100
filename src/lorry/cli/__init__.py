"""The ``lorry`` command line: the only package that prints, and the only one that uses click/rich.

Each command lives in its own module and attaches itself to :data:`lorry.cli.app.cli`; importing
the modules below registers them.
"""

from __future__ import annotations

import sys

from lorry.cli.app import cli, run

__all__ = ["cli", "main", "run"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())


from lorry.cli import store_cmds  # noqa: E402, F401
from lorry.cli import registry_cmds  # noqa: E402, F401
