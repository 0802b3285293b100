"""Tests of the CLI error boundary: one line, exit code by kind."""

from __future__ import annotations

import click
import pytest

from lorry.cli.app import _one_line, cli, run
from lorry.errors import IntegrityError, NotFoundError, StoreError


def test_one_line_joins_lorry_causes_and_drops_raw_os_errors() -> None:
    try:
        try:
            raise FileNotFoundError(2, "No such file or directory")
        except OSError as exc:
            raise StoreError("creating store /x: No such file or directory") from exc
    except StoreError as err:
        assert _one_line(err) == "creating store /x: No such file or directory"
    outer = IntegrityError("pulling a:1")
    outer.__cause__ = IntegrityError("blob sha256:ab: digest\nmismatch")
    assert _one_line(outer) == "pulling a:1: blob sha256:ab: digest mismatch"


def test_run_maps_error_kinds_to_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    @cli.command("boom-for-test", hidden=True)
    def boom() -> None:
        raise NotFoundError("no such image: nope")

    try:
        assert run(["boom-for-test"]) == 3
    finally:
        cli.commands.pop("boom-for-test")
    assert capsys.readouterr().err == "lorry: error: no such image: nope\n"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["no-such-command"]) == click.UsageError("x").exit_code == 2
    assert "No such command" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["no-such-command"], "No such command 'no-such-command'; see 'lorry --help'"),
        (["pull"], "Missing argument 'REFERENCE'; see 'lorry pull --help'"),
        (["images", "--bogus"], "No such option '--bogus'; see 'lorry images --help'"),
        (["push", "--progress", "loud", "x"], "see 'lorry push --help'"),
    ],
)
def test_every_usage_error_is_one_lorry_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("lorry: error: ") and err.count("\n") == 1, err
    assert said in err, err


def test_help_lists_the_exit_codes_of_every_error_kind(capsys: pytest.CaptureFixture[str]) -> None:
    import lorry.errors as errors

    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    kinds = {
        c.exit_code
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.LorryError)
    }
    for code in kinds | {0}:
        assert f"\n    {code} " in out, (code, out)


def test_login_without_a_terminal_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    assert run(["login", "127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "no terminal to ask for the username and password" in err, err
    assert run(["login", "127.0.0.1:1", "--password-stdin"]) == 2
    assert "--password-stdin needs --username" in capsys.readouterr().err


def test_a_password_on_the_command_line_warns(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["login", "127.0.0.1:1", "-u", "bob", "-p", "pw"]) == 6  # nothing listens there
    err = capsys.readouterr().err
    assert "WARNING! Using --password via the CLI is insecure" in err, err


def test_warnings_read_like_error_lines_and_escape_control_bytes() -> None:
    import logging

    from lorry.cli.app import _WarningLines

    record = logging.LogRecord("lorry.x", logging.WARNING, "f", 1, "tag %s\x1b[2J", ("a",), None)
    assert _WarningLines().format(record) == "lorry: warning: tag a\\x1b[2J"
