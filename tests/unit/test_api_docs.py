"""The API reference builds from the docstrings (scripts/docs), so it cannot rot unnoticed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_scripts_docs_builds_the_reference(tmp_path: Path) -> None:
    script = (ROOT / "scripts" / "docs").read_text()
    modules = script.split('"$@"', 1)[1].split()
    out = tmp_path / "api"
    done = subprocess.run(
        [sys.executable, "-m", "pdoc", "--docformat", "restructuredtext", "-o", str(out), *modules],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "error::UserWarning"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warn" not in done.stderr, done.stderr[-2000:]
    api = (out / "lorry" / "api.html").read_text()
    for name in ("pull_sync", "push_sync", "copy_sync", "PullOptions"):
        assert name in api
