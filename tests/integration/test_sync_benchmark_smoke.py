"""benchmarks/sync.py still runs end to end: the tiny set, one round per tool, figures as JSON.

Nothing here looks at how long anything took (benchmarks are not tests); it checks that the
script builds and serves the images, syncs them with lorry and skopeo into fresh registries
(full and no-op), counts the no-op's requests at the proxies, prints and cleans up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "sync.py"
#: The tiny preset: 3 repositories x 2 tags.
IMAGES = 6


def test_sync_benchmark_prints_its_figures_and_cleans_up(tmp_path: Path) -> None:
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
        for side in ("lorry", "peer"):
            figures = result[side]
            assert len(figures["seconds"]) == len(figures["max_rss_bytes"]) == 1
            assert figures["median_seconds"] == figures["seconds"][0] > 0
            assert figures["max_rss_bytes"][0] > 1_000_000  # GNU time measured a real process
        assert result["peer"]["tool"] == "skopeo sync"
        ratio = result["lorry"]["median_seconds"] / result["peer"]["median_seconds"]
        assert result["ratio"] == pytest.approx(ratio, rel=1e-2)  # JSON seconds are rounded
    requests = doc["results"][1]["requests"]
    assert requests["per_tag_target"] == 2.0
    for side in ("lorry", "peer"):
        counted = requests[side]
        assert counted["requests"] == sum(counted["kinds"].values()) >= IMAGES  # a HEAD or GET each
        assert counted["per_tag"] == pytest.approx(counted["requests"] / IMAGES, rel=1e-3)
        assert not any("upload" in kind for kind in counted["kinds"])  # a no-op sends no blob
    assert list(tmp_path.iterdir()) == []  # the work directory was removed
