"""The benchmark scripts still run end to end: a tiny image, one run per tool, figures as JSON.

Nothing here looks at how long anything took (benchmarks are not tests); it checks that both
scripts build, serve, pull/push with lorry and skopeo, measure, print and clean up.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest
from bench_smoke import BENCHMARKS, check_one_run, run_tiny

pytestmark = pytest.mark.integration


def _load(path: Path) -> ModuleType:
    """Import a benchmark helper module by path (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["pull", "push"])
def test_benchmark_prints_its_figures_and_cleans_up(script: str, tmp_path: Path) -> None:
    lines = run_tiny(script, tmp_path)
    assert lines[0].startswith(f"{script} 'tiny' (3 layers, ")
    assert any(line.strip().startswith("ratio lorry/skopeo ") for line in lines)
    if script == "pull":  # and the floor of any client on lorry's stack, in the same rounds
        assert any(line.strip().startswith("(the stack's floor: ") for line in lines)
    doc = json.loads(lines[-1])
    assert (doc["benchmark"], doc["runs"], doc["warmup"]) == (script, 1, 0)
    # pull measures both verification modes against the same skopeo runs
    modes = [script, "pull --verify-diffids"] if script == "pull" else [script]
    assert [r["operation"] for r in doc["results"]] == modes
    for result in doc["results"]:
        assert (result["image"]["name"], result["image"]["layers"]) == ("tiny", 3)
        check_one_run(result)
        assert result["peer"]["tool"] == "skopeo copy"
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
