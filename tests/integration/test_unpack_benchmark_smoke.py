"""benchmarks/unpack.py still runs end to end: a tiny image, one run per tool, figures as JSON.

Nothing here looks at how long anything took (benchmarks are not tests); it checks that the
script builds, stores, serves, unpacks with lorry, umoci, GNU tar and (where containerd exists)
ctr, measures, prints each comparison with its peer and target, and cleans up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_smoke import check_one_run, run_tiny

pytestmark = pytest.mark.integration

PEERS = {"umoci unpack": "umoci", "GNU tar": "tar", "ctr images pull": "ctr"}


def test_unpack_benchmark_prints_its_figures_and_cleans_up(tmp_path: Path) -> None:
    lines = run_tiny("unpack", tmp_path, timeout=120)
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
        check_one_run(result)
        assert result["ratio_target"] > 0 and result["rss_target_bytes"] == 150_000_000
        short = PEERS[result["peer"]["tool"]]
        assert any(line.strip().startswith(f"ratio lorry/{short} ") for line in lines)
    assert list(tmp_path.iterdir()) == []  # the work directory was removed
