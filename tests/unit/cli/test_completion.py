"""``lorry completion``: a script each shell can source, and completions that come back."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lorry.cli.app import run


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o"), ("zsh", "compdef"), ("fish", "complete --no-files")],
)
def test_each_shell_gets_its_script(
    capsys: pytest.CaptureFixture[str], shell: str, marker: str
) -> None:
    assert run(["completion", shell]) == 0
    out = capsys.readouterr().out
    assert marker in out and f"_LORRY_COMPLETE={shell}_" in out.replace("_source", "_complete")


def test_an_unknown_shell_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["completion", "tcsh"]) == 2
    assert capsys.readouterr().err.startswith("lorry: error: Invalid value for '{bash|zsh|fish}'")


def test_bash_completes_command_names() -> None:
    lorry = Path(sys.executable).parent / "lorry"  # the console script beside this Python
    env = {
        **os.environ,
        "_LORRY_COMPLETE": "bash_complete",
        "COMP_WORDS": "lorry pu",
        "COMP_CWORD": "1",
    }
    done = subprocess.run([lorry], env=env, capture_output=True, text=True, check=False)
    assert done.stdout.split() == ["plain,pull", "plain,push"], done
