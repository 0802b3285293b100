"""What the benchmark smoke tests share: run a script on its tiny preset, check a run's figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_tiny(script: str, workdir: Path, timeout: float = 240) -> list[str]:
    """``benchmarks/SCRIPT.py`` on the tiny preset, one run, no warm-up, JSON; its stdout lines."""
    args = ["--image", "tiny", "--runs", "1", "--warmup", "0", "--json", "--workdir", str(workdir)]
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def check_one_run(result: dict[str, Any]) -> None:
    """Both sides measured once by GNU time, and the ratio is theirs (JSON seconds rounded)."""
    for side in ("lorry", "peer"):
        figures = result[side]
        assert len(figures["seconds"]) == len(figures["max_rss_bytes"]) == 1
        assert figures["median_seconds"] == figures["seconds"][0] > 0
        assert figures["max_rss_bytes"][0] > 1_000_000  # GNU time measured a real process
    ratio = result["lorry"]["median_seconds"] / result["peer"]["median_seconds"]
    assert result["ratio"] == pytest.approx(ratio, rel=1e-2)
