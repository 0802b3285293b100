"""The benchmark scripts still run end to end: a tiny image, one run per tool, figures as JSON.

Nothing here looks at how long anything took (benchmarks are not tests); it checks that both
scripts build, serve, pull/push with lorry and skopeo, measure, print and clean up.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"


def _load(path: Path) -> ModuleType:
    """Import a benchmark helper module by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _run(script: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    args = ["--image", "tiny", "--runs", "1", "--warmup", "0", "--json", "--workdir", str(workdir)]
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{script}.py"), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.parametrize("script", ["pull", "push"])
def test_benchmark_prints_its_figures_and_cleans_up(script: str, tmp_path: Path) -> None:
    proc = _run(script, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"{script} 'tiny' (3 layers, ")
    assert any(line.strip().startswith("ratio lorry/skopeo ") for line in lines)
    doc = json.loads(lines[-1])
    assert (doc["benchmark"], doc["runs"], doc["warmup"]) == (script, 1, 0)
    # pull measures both verification modes against the same skopeo runs
    modes = [script, "pull --verify-diffids"] if script == "pull" else [script]
    assert [r["operation"] for r in doc["results"]] == modes
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
    assert list(tmp_path.iterdir()) == []  # the work directory was removed


def test_peak_rss_is_the_commands_own_not_the_harness(tmp_path: Path) -> None:
    """A 300 MB harness must not make a small child look big, nor hide a big child's peak."""
    proc = _load(BENCHMARKS / "_proc.py")
    clean_env, run_measured = proc.clean_env, proc.run_measured
    ballast = bytearray(300_000_000)
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page: really resident
    env = clean_env(tmp_path / "home")
    small = run_measured(["true"], env=env, log=tmp_path / "log")
    grow = "b = bytearray(200_000_000); b[::4096] = b'x' * len(b[::4096])"
    big = run_measured([sys.executable, "-c", grow], env=env, log=tmp_path / "log")
    del ballast
    assert small.max_rss < 50_000_000
    assert big.max_rss > 200_000_000
