"""House rules that a linter does not check: module size (DESIGN.md §8, issue 2)."""

from __future__ import annotations

from pathlib import Path

import lorry

SRC = Path(lorry.__file__).parent
MAX_LINES = 500


def test_no_module_over_500_lines() -> None:
    too_long = {
        str(p.relative_to(SRC)): n
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"split these modules (over {MAX_LINES} lines): {too_long}"


def test_every_package_module_is_found() -> None:
    # Guards the test above against a wrong SRC path.
    assert (SRC / "errors.py").is_file()
    assert sum(1 for _ in SRC.rglob("*.py")) > 20
