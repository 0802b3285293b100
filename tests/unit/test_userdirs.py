"""lorry.userdirs gives, on Linux, the directories platformdirs gives, without importing it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from lorry.userdirs import user_config_dir, user_data_dir

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rule")


@pytest.mark.parametrize(
    ("config_home", "data_home"),
    [
        (None, None),  # unset: ~/.config, ~/.local/share
        ("", ""),  # empty counts as unset
        ("/xdg/config", "/xdg/data"),
        ("relative/config", "relative/data"),  # not absolute: ignored, as the XDG spec says
    ],
)
def test_the_directories_are_the_ones_platformdirs_gives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config_home: str | None, data_home: str | None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for variable, value in (("XDG_CONFIG_HOME", config_home), ("XDG_DATA_HOME", data_home)):
        if value is None:
            monkeypatch.delenv(variable, raising=False)
        else:
            monkeypatch.setenv(variable, value)
    assert user_config_dir("lorry") == platformdirs.user_config_path("lorry", appauthor=False)
    assert user_data_dir("lorry") == platformdirs.user_data_path("lorry", appauthor=False)


def test_the_default_store_and_config_need_no_platformdirs(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from lorry.settings import default_config_path\n"
        "from lorry.store.root import default_root\n"
        "default_config_path(), default_root()\n"
        "print('platformdirs' in sys.modules, 'tempfile' in sys.modules)\n"
    )
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
