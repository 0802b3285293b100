"""The per-user directories lorry defaults to: XDG base directories on Linux, else platformdirs.

On Linux this is the rule platformdirs applies there (``$XDG_CONFIG_HOME`` / ``$XDG_DATA_HOME``
when absolute, else ``~/.config`` / ``~/.local/share``), without importing platformdirs, which
loads tempfile and shutil: about 9 ms of every command's start-up here.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["user_config_dir", "user_data_dir"]


if sys.platform.startswith("linux"):

    def _xdg(variable: str, fallback: str) -> Path:
        value = os.environ.get(variable, "")
        return Path(value if os.path.isabs(value) else os.path.expanduser(fallback))

    def user_config_dir(app: str) -> Path:
        """Where ``app`` keeps its configuration for this user."""
        return _xdg("XDG_CONFIG_HOME", "~/.config") / app

    def user_data_dir(app: str) -> Path:
        """Where ``app`` keeps its data for this user."""
        return _xdg("XDG_DATA_HOME", "~/.local/share") / app

else:  # other systems: their own conventions

    def user_config_dir(app: str) -> Path:
        """Where ``app`` keeps its configuration for this user."""
        import platformdirs

        return platformdirs.user_config_path(app, appauthor=False)

    def user_data_dir(app: str) -> Path:
        """Where ``app`` keeps its data for this user."""
        import platformdirs

        return platformdirs.user_data_path(app, appauthor=False)
