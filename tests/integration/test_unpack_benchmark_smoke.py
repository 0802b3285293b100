"""benchmarks/unpack.py still runs end to end: a tiny image, one run per tool, figures as JSON.

Nothing here looks at how long anything took (benchmarks are not tests); it checks that the
script builds, stores, serves, unpacks with lorry, umoci, GNU tar and (where containerd exists)
ctr, measures, prints each comparison with its peer and target, and cleans up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "unpack.py"
PEERS = {"umoci unpack": "umoci", "GNU tar": "tar", "ctr images pull": "ctr"}


def test_unpack_benchmark_prints_its_figures_and_cleans_up(tmp_path: Path) -> None:
    args = ["--image", "tiny", "--runs", "1", "--warmup", "0", "--json", "--workdir", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("work directory and destinations on ")
    doc = json.loads(lines[-1])
    assert (doc["benchmark"], doc["runs"], doc["warmup"]) == ("unpack", 1, 0)
    assert doc["filesystem"] and doc["filesystem"] in lines[0]
    results = doc["results"]
    pairs = [(r["operation"], r["peer"]["tool"]) for r in results]
    assert pairs[:2] == [("unpack", "umoci unpack"), ("unpack", "GNU tar")]
    # ctr is measured, or its comparison alone is skipped with the reason said
    if len(pairs) == 3:
        assert pairs[2] == ("unpack docker://", "ctr images pull") and doc["skipped"] == []
    else:
        assert len(pairs) == 2 and doc["skipped"][0]["reason"], doc
        assert any("skipped" in line for line in lines)
    for result in results:
        assert (result["image"]["name"], result["image"]["layers"]) == ("tiny", 3)
        for side in ("lorry", "peer"):
            figures = result[side]
            assert len(figures["seconds"]) == len(figures["max_rss_bytes"]) == 1
            assert figures["median_seconds"] == figures["seconds"][0] > 0
            assert figures["max_rss_bytes"][0] > 1_000_000  # GNU time measured a real process
        ratio = result["lorry"]["median_seconds"] / result["peer"]["median_seconds"]
        assert result["ratio"] == pytest.approx(ratio, rel=1e-2)  # JSON seconds are rounded
        assert result["ratio_target"] > 0 and result["rss_target_bytes"] == 150_000_000
        short = PEERS[result["peer"]["tool"]]
        assert any(line.strip().startswith(f"ratio lorry/{short} ") for line in lines)
    assert list(tmp_path.iterdir()) == []  # the work directory was removed
