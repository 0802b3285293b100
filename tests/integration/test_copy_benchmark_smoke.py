"""benchmarks/copy_bench.py still runs end to end: a tiny image, one run per tool and case, as JSON.

Like ``test_benchmarks_smoke.py`` for pull and push, nothing here looks at how long anything
took; it checks that both cases (registry → OCI layout, registry → registry) build, serve, copy
with lorry and skopeo, measure, print and clean up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "copy_bench.py"


def test_copy_benchmark_prints_both_cases_and_cleans_up(tmp_path: Path) -> None:
    args = ["--image", "tiny", "--runs", "1", "--warmup", "0", "--json", "--workdir", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("copy-oci 'tiny' (3 layers, ")
    assert any(line.startswith("copy-reg 'tiny' (3 layers, ") for line in lines)
    assert sum(line.strip().startswith("ratio lorry/skopeo ") for line in lines) == 2
    doc = json.loads(lines[-1])
    assert (doc["benchmark"], doc["runs"], doc["warmup"]) == ("copy", 1, 0)
    assert [r["operation"] for r in doc["results"]] == ["copy-oci", "copy-reg"]
    for result in doc["results"]:
        assert (result["image"]["name"], result["image"]["layers"]) == ("tiny", 3)
        for side in ("lorry", "peer"):
            figures = result[side]
            assert len(figures["seconds"]) == len(figures["max_rss_bytes"]) == 1
            assert figures["median_seconds"] == figures["seconds"][0] > 0
            assert figures["max_rss_bytes"][0] > 1_000_000  # GNU time measured a real process
        assert result["peer"]["tool"] == "skopeo copy"
        ratio = result["lorry"]["median_seconds"] / result["peer"]["median_seconds"]
        assert result["ratio"] == pytest.approx(ratio, rel=1e-2)  # JSON seconds are rounded
    assert [r["ratio_target"] for r in doc["results"]] == [None, 0.6]  # 0.5 is for 'large'
    assert list(tmp_path.iterdir()) == []  # the work directory was removed
