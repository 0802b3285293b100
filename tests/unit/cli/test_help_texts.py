"""Every command's help is plain text with at least one example (issue 15 §2)."""

from __future__ import annotations

import pytest

from lorry.cli.app import COMMAND_MODULES, run


@pytest.mark.parametrize("command", sorted(COMMAND_MODULES))
def test_help_is_plain_and_shows_an_example(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    assert run([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":func:" not in text and ":class:" not in text, text
    assert "\n  Example" in text, text
    assert f"lorry {command}" in text.split("Example", 1)[1], text
