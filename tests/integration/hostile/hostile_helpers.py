"""Running lorry against a hostile registry: in-process for speed, as a child for time and RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from lorry.cli.app import run

__all__ = ["CONTROL", "Outcome", "lorry", "lorry_child"]

#: Bytes a terminal would act on: C0 controls but newline, DEL and the C1 range.
CONTROL = {chr(c) for c in range(0x20) if c != 0x0A} | {chr(c) for c in range(0x7F, 0xA0)}


@dataclass(frozen=True)
class Outcome:
    """How one lorry run ended."""

    code: int
    out: str
    err: str
    seconds: float
    rss_mb: float = 0.0

    @property
    def errors(self) -> list[str]:
        """The ``lorry: error:`` lines of stderr."""
        return [line for line in self.err.splitlines() if line.startswith("lorry: error:")]

    def one_error(self) -> str:
        """The single error line; fails the test if there is not exactly one, or a traceback."""
        assert "Traceback" not in self.err, self.err[-3000:]
        assert len(self.errors) == 1, self.err[-3000:]
        return self.errors[0]


def lorry(argv: list[str], root: Path, capsys: pytest.CaptureFixture[str]) -> Outcome:
    """Run the CLI in this process (so a test may shorten the deadlines)."""
    capsys.readouterr()
    start = time.monotonic()
    code = run(["--root", str(root), *argv])
    seconds = time.monotonic() - start
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err, seconds)


def lorry_child(argv: list[str], root: Path, timeout: float = 300) -> Outcome:
    """Run ``python -m lorry`` as a child process, measuring its wall time and peak RSS.

    The RSS is GNU time's figure for lorry itself: a child forked straight from this (large)
    test process would report the parent's pages as its own peak until it execs.
    """
    with tempfile.TemporaryDirectory() as work:
        usage = Path(work, "rss")
        cmd = ["/usr/bin/time", "-f", "%M", "-o", str(usage), sys.executable, "-m", "lorry"]
        with Path(work, "out").open("w+b") as out, Path(work, "err").open("w+b") as err:
            start = time.monotonic()
            proc = subprocess.Popen(
                [*cmd, "--root", str(root), *argv],
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            killer = threading.Timer(timeout, os.killpg, (proc.pid, signal.SIGKILL))
            killer.start()
            try:
                code = proc.wait()
            finally:
                killer.cancel()
            seconds = time.monotonic() - start
            out.seek(0)
            err.seek(0)
            text_out, text_err = out.read().decode(), err.read().decode()
        lines = usage.read_text().split()
        rss_kb = int(lines[-1]) if lines else 0
    return Outcome(code, text_out, text_err, seconds, rss_kb / 1024)
