"""benchmarks/sync.py still runs end to end: the tiny set, one round per tool, figures as JSON.

Nothing here looks at how long anything took (benchmarks are not tests); it checks that the
script builds and serves the images, syncs them with lorry and skopeo into fresh registries
(full and no-op), counts the no-op's requests at the proxies, prints and cleans up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bench_smoke import check_one_run, run_tiny

pytestmark = pytest.mark.integration

#: The tiny preset: 3 repositories x 2 tags.
IMAGES = 6


def test_sync_benchmark_prints_its_figures_and_cleans_up(tmp_path: Path) -> None:
    lines = run_tiny("sync", tmp_path)
    assert lines[0].startswith("sync 'tiny' (3 repositories x 2 tags = 6 images, ")
    assert sum(line.strip().startswith("ratio lorry/skopeo ") for line in lines) == 2
    assert any(line.strip().startswith("no-op requests lorry ") for line in lines)
    assert any(line.strip().startswith("no-op requests skopeo ") for line in lines)
    doc = json.loads(lines[-1])
    assert (doc["benchmark"], doc["runs"], doc["warmup"]) == ("sync", 1, 0)
    assert [r["operation"] for r in doc["results"]] == ["sync", "sync-noop"]
    for result, target in zip(doc["results"], (0.3, 0.2), strict=True):
        images = result["image"]
        assert (images["name"], images["repos"], images["tags"]) == ("tiny", 3, 2)
        assert images["images"] == IMAGES and images["layers"] == 3
        assert result["ratio_target"] == target
        check_one_run(result)
        assert result["peer"]["tool"] == "skopeo sync"
    requests = doc["results"][1]["requests"]
    assert requests["per_tag_target"] == 2.0
    for side in ("lorry", "peer"):
        counted = requests[side]
        assert counted["requests"] == sum(counted["kinds"].values()) >= IMAGES  # a HEAD or GET each
        assert counted["per_tag"] == pytest.approx(counted["requests"] / IMAGES, rel=1e-3)
        assert not any("upload" in kind for kind in counted["kinds"])  # a no-op sends no blob
    assert list(tmp_path.iterdir()) == []  # the work directory was removed
