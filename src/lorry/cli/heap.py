"""The ``lorry`` process's garbage collector: idle while modules load, and not at exit.

Loading a command imports some 300 modules whose objects live as long as the process; the
collector would walk them again and again while they load, and once more at exit (35–60 ms of
a pull's run here). The console script turns it off while they load, then freezes what loaded
(frozen objects are never walked again) and turns it back on for the command's own garbage.
Only :func:`lorry.cli.main` starts this: a library caller's collector is left alone.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_loaded", "hold_while_loading", "skip_final_walk"]


class _Hold:
    """Whether this module turned the collector off (and so must turn it back on)."""

    active = False


def hold_while_loading() -> None:
    """Stop collecting until :func:`freeze_loaded` (the console script's first step)."""
    if gc.isenabled():
        gc.disable()
        _Hold.active = True


def freeze_loaded() -> None:
    """After a command's modules are loaded: freeze what exists, collect again from here on."""
    if _Hold.active:
        _Hold.active = False
        gc.freeze()
        gc.enable()


def skip_final_walk() -> None:
    """Freeze everything just before the process exits, so the interpreter's last collection
    has nothing to walk (files and connections are closed by their owners before this)."""
    gc.freeze()
