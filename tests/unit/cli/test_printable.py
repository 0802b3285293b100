"""Words from a registry reach the terminal with control characters escaped (issue 16, item 6)."""

from __future__ import annotations

import pytest

from lorry.cli.app import printable, run
from lorry.errors import UnavailableError


def test_control_characters_are_escaped_and_text_kept() -> None:
    assert printable("plain: naïve ✓") == "plain: naïve ✓"
    assert printable("\x1b]0;pwned\x07red\x1b[31m") == "\\x1b]0;pwned\\x07red\\x1b[31m"
    assert printable("a\x00b\x7fc\x9bd\r\n") == "a\\x00b\\x7fc\\x9bd\\x0d\\x0a"


def test_an_error_from_a_registry_is_printed_escaped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def hostile(*args: object, **kwargs: object) -> None:
        raise UnavailableError("registry said: \x1b]52;c;ZXZpbA==\x07 \x1b[2J gone")

    monkeypatch.setattr("lorry.store.store.Store.open", hostile)
    code = run(["images"])
    err = capsys.readouterr().err
    assert code != 0
    assert "\x1b" not in err and "\x07" not in err, repr(err)
    assert "\\x1b]52;c;ZXZpbA==\\x07" in err and err.count("\n") == 1, repr(err)
