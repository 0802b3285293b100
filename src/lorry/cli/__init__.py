"""The ``lorry`` command line: the only package that prints, and the only one that uses click.

Each command lives in its own module and attaches itself to :data:`lorry.cli.app.cli` when
imported; :data:`lorry.cli.app.COMMAND_MODULES` says which module to import for a command, so a
run loads only the command it runs. ``cli`` and ``run`` load on first use, so that :func:`main`
can hold the garbage collector before anything loads (:mod:`lorry.cli.heap`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from lorry.cli import heap

if TYPE_CHECKING:
    from lorry.cli.app import cli, run

__all__ = ["cli", "main", "run"]


def __getattr__(name: str) -> Any:
    """``cli`` and ``run`` from :mod:`lorry.cli.app`, loaded when first asked for."""
    if name in ("cli", "run"):
        from lorry.cli import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    heap.hold_while_loading()
    from lorry.cli.app import run

    code = run()
    heap.skip_final_walk()
    sys.exit(code)
