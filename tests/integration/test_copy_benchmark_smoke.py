"""benchmarks/copy_bench.py still runs end to end: a tiny image, one run per tool and case, as JSON.

Like ``test_benchmarks_smoke.py`` for pull and push, nothing here looks at how long anything
took; it checks that both cases (registry → OCI layout, registry → registry) build, serve, copy
with lorry and skopeo, measure, print and clean up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_smoke import check_one_run, run_tiny

pytestmark = pytest.mark.integration


def test_copy_benchmark_prints_both_cases_and_cleans_up(tmp_path: Path) -> None:
    lines = run_tiny("copy_bench", tmp_path)
    assert lines[0].startswith("copy-oci 'tiny' (3 layers, ")
    assert any(line.startswith("copy-reg 'tiny' (3 layers, ") for line in lines)
    assert sum(line.strip().startswith("ratio lorry/skopeo ") for line in lines) == 2
    doc = json.loads(lines[-1])
    assert (doc["benchmark"], doc["runs"], doc["warmup"]) == ("copy", 1, 0)
    assert [r["operation"] for r in doc["results"]] == ["copy-oci", "copy-reg"]
    for result in doc["results"]:
        assert (result["image"]["name"], result["image"]["layers"]) == ("tiny", 3)
        check_one_run(result)
        assert result["peer"]["tool"] == "skopeo copy"
    assert [r["ratio_target"] for r in doc["results"]] == [None, 0.6]  # 0.5 is for 'large'
    assert list(tmp_path.iterdir()) == []  # the work directory was removed
