"""The ``lorry`` command line: the only package that prints, and the only one that uses click/rich.

Each command lives in its own module and attaches itself to :data:`lorry.cli.app.cli`; the
import below registers them all (one module a line, so parallel additions do not collide).
"""

from __future__ import annotations

import sys

from lorry.cli import (  # noqa: F401 - imported for their side effect: commands register
    archive_cmds,
    copy_cmd,
    pull_cmd,
    push_cmd,
    registry_cmds,
    store_cmds,
)
from lorry.cli.app import cli, run

__all__ = ["cli", "main", "run"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
