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
