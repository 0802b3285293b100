"""What the pull and push benchmarks share: options, the images, the registry, figures, output.

A benchmark builds its images with :mod:`lorry.testing` into a temporary work directory, serves
them from a real ``docker-registry`` on 127.0.0.1, then runs lorry and its peer (skopeo)
alternately, each run in a fresh destination, and compares medians measured in the same run.
Nothing here asserts a duration: the figures are printed next to their targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _proc import Run

from lorry.testing.builder import (
    BuiltImage,
    LayerSpec,
    build_image,
    large_image_spec,
    many_small_image_spec,
)
from lorry.testing.registry import RegistryServer, start_registry
from lorry.testing.skopeo import push_layout

__all__ = [
    "MB",
    "PRESETS",
    "TAG",
    "BenchImage",
    "Comparison",
    "Options",
    "add_run_options",
    "alternate",
    "build",
    "emit_json",
    "lorry_cmd",
    "note",
    "parse_options",
    "rotate",
    "run_options",
    "serve",
    "settle",
    "start",
    "work_dir",
]

#: A megabyte as the targets mean it: 10^6 bytes.
MB = 1_000_000
#: The tag every benchmark image is built and pushed with.
TAG = "bench"


def _tiny_spec() -> list[LayerSpec]:
    """Three small layers: for the smoke test, which only checks the scripts still run."""
    return [LayerSpec(files=20, size=200_000)] * 3


#: Image presets by name; ``tiny`` exists for the smoke test.
PRESETS: dict[str, Callable[[], list[LayerSpec]]] = {
    "large": large_image_spec,
    "many-small": many_small_image_spec,
    "tiny": _tiny_spec,
}


@dataclass(frozen=True)
class Options:
    """The command-line options both benchmarks take."""

    images: list[str]
    runs: int
    warmup: int
    keep: bool
    json: bool
    workdir: Path | None


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--runs``, ``--warmup``, ``--keep``, ``--json`` and ``--workdir``: every script's own."""
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each tool (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each tool first (1)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument(
        "--workdir", type=Path, help="make the work directory here (default: the temp dir)"
    )


def run_options(
    parser: argparse.ArgumentParser, ns: argparse.Namespace, images: list[str]
) -> Options:
    """The parsed run options (checked) for ``images``."""
    if ns.runs < 1 or ns.warmup < 0:
        parser.error("--runs must be at least 1 and --warmup at least 0")
    return Options(images, ns.runs, ns.warmup, ns.keep, ns.json, ns.workdir)


def parse_options(description: str, argv: Sequence[str] | None = None) -> Options:
    """Parse ``--image`` and the run options (:func:`add_run_options`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--image",
        choices=["large", "many-small", "all", "tiny"],
        default="all",
        help="which image to measure (all = large and many-small; tiny is for smoke tests)",
    )
    add_run_options(parser)
    ns = parser.parse_args(argv)
    images = ["large", "many-small"] if ns.image == "all" else [ns.image]
    return run_options(parser, ns, images)


@contextmanager
def work_dir(options: Options) -> Iterator[Path]:
    """A fresh temporary directory for the whole benchmark, removed at the end unless --keep."""
    if options.workdir is not None:
        options.workdir.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="lorry-bench-", dir=options.workdir))
    try:
        yield path
    finally:
        if options.keep:
            print(f"kept the work directory {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class BenchImage:
    """A built benchmark image and what it holds."""

    name: str
    built: BuiltImage
    files: int
    file_bytes: int

    @property
    def compressed(self) -> int:
        """Total compressed size of the layers, in bytes."""
        return sum(self.built.layer_sizes)

    def describe(self) -> str:
        """One line: layers, compressed size, file data and file count."""
        return (
            f"{len(self.built.layer_sizes)} layers, {self.compressed / MB:.1f} MB compressed, "
            f"{self.file_bytes / MB:.1f} MB file data, {self.files} files"
        )

    def to_json(self) -> dict[str, Any]:
        """The image's figures as a JSON object."""
        return {
            "name": self.name,
            "layers": len(self.built.layer_sizes),
            "compressed_bytes": self.compressed,
            "file_bytes": self.file_bytes,
            "files": self.files,
            "manifest_digest": str(self.built.manifest_digest),
        }


def build(name: str, dest: Path) -> BenchImage:
    """Build the preset ``name`` into the OCI layout ``dest``, tagged ``bench``."""
    specs = PRESETS[name]()
    start = time.perf_counter()
    built = build_image(dest, layers=specs, seed=6, tag=TAG)
    note(f"built '{name}' in {time.perf_counter() - start:.1f} s")
    return BenchImage(name, built, sum(s.files for s in specs), sum(s.size for s in specs))


def serve(image: BenchImage, registry: RegistryServer) -> str:
    """Push ``image`` to ``registry`` with skopeo; return ``host/bench/NAME:bench``."""
    push_layout(image.built, registry, f"bench/{image.name}", tag=TAG)
    return f"{registry.host}/bench/{image.name}:{TAG}"


def start(workdir: Path) -> RegistryServer:
    """Start a plain registry with its storage under ``workdir``."""
    return start_registry(workdir)


def pushed_digest(registry: RegistryServer, repo: str, media_type: str) -> str:
    """The digest the registry reports for ``repo:bench`` (HEAD on the manifest)."""
    url = f"{registry.url}/v2/{repo}/manifests/{TAG}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": media_type})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(resp.headers.get("Docker-Content-Digest", ""))


def into_fresh_registry(
    image: BenchImage,
    work: Path,
    tool: str,
    i: int,
    send: Callable[[str, Path], Run],
    *,
    scheme: str = "",
    label: str = "push",
) -> Run:
    """Start a fresh registry, run ``send(scheme + host/repo:tag, log)``, check the digest it
    serves, remove it all (push.py and copy_bench.py: neither tool can skip blobs already there)."""
    from _proc import BenchmarkError

    where = work / f"dest-{tool}-{i}"
    repo = f"{tool}-{i}/{image.name}"
    with start(where) as registry:
        run = send(f"{scheme}{registry.host}/{repo}:{TAG}", work / f"{tool}-{label}.log")
        got = pushed_digest(registry, repo, image.built.media_type)
    shutil.rmtree(where)
    if got != str(image.built.manifest_digest):
        raise BenchmarkError(
            f"{tool} {label} to {repo}: registry has {got}, want {image.built.manifest_digest}"
        )
    return run


def lorry_cmd(root: Path, *args: str) -> list[str]:
    """``python -m lorry --root ROOT ARGS``, with this interpreter (the project's virtualenv)."""
    return [sys.executable, "-m", "lorry", "--root", str(root), *args]


def settle() -> None:
    """Flush dirty pages between runs, so one run's writeback does not land in the next."""
    os.sync()


def note(text: str) -> None:
    """Progress of the harness itself, on stderr (stdout carries the figures)."""
    print(text, file=sys.stderr, flush=True)


@dataclass
class Comparison:
    """lorry's and the peer's runs of one operation on one image, and the targets to show."""

    operation: str
    image: BenchImage
    peer: str
    lorry_runs: list[Run]
    peer_runs: list[Run]
    ratio_target: float | None = None
    rss_target: int | None = None
    #: The peer's short name in the ratio line (``ratio lorry/skopeo``).
    short: str = "skopeo"
    #: A note printed under the figures, in brackets (nothing when empty).
    remark: str = ""

    @property
    def ratio(self) -> float:
        """Median lorry seconds over median peer seconds."""
        return _median(self.lorry_runs) / _median(self.peer_runs)

    def lines(self) -> list[str]:
        """The human-readable figures, one tool a line, then the ratio and the targets."""
        n = len(self.lorry_runs)
        out = [f"{self.operation} '{self.image.name}' ({self.image.describe()}), {n} runs each"]
        out.append(_tool_line(f"lorry {self.operation}", self.lorry_runs))
        out.append(_tool_line(self.peer, self.peer_runs))
        target = _target(self.ratio, self.ratio_target)
        out.append(f"  ratio lorry/{self.short} {self.ratio:.2f}{target}")
        rss = max(r.max_rss for r in self.lorry_runs)
        limit = None if self.rss_target is None else self.rss_target / MB
        out.append(f"  lorry peak RSS {rss / MB:.1f} MB{_target(rss / MB, limit, ' MB')}")
        if self.remark:
            out.append(f"  ({self.remark})")
        return out

    def to_json(self) -> dict[str, Any]:
        """The figures as a JSON object (every run, medians, ratio, targets)."""
        return {
            "operation": self.operation,
            "image": self.image.to_json(),
            "lorry": _runs_json(self.lorry_runs),
            "peer": {"tool": self.peer, **_runs_json(self.peer_runs)},
            "ratio": round(self.ratio, 4),
            "ratio_target": self.ratio_target,
            "lorry_peak_rss_bytes": max(r.max_rss for r in self.lorry_runs),
            "rss_target_bytes": self.rss_target,
        }


def _median(runs: list[Run]) -> float:
    return statistics.median(r.seconds for r in runs)


def _tool_line(label: str, runs: list[Run]) -> str:
    secs = [r.seconds for r in runs]
    cpu = statistics.median(r.cpu_seconds for r in runs)
    rss = max(r.max_rss for r in runs) / MB
    return (
        f"  {label:<14} median {_median(runs):7.3f} s  (min {min(secs):.3f}, max {max(secs):.3f})"
        f"  cpu {cpu:6.2f} s  peak RSS {rss:6.1f} MB"
    )


def _target(value: float, limit: float | None, unit: str = "") -> str:
    if limit is None:
        return "  (no target)"
    verdict = "met" if value <= limit else "MISSED"
    return f"  target <= {limit:g}{unit}: {verdict}"


def _runs_json(runs: list[Run]) -> dict[str, Any]:
    return {
        "median_seconds": round(_median(runs), 4),
        "seconds": [round(r.seconds, 4) for r in runs],
        "cpu_seconds": [round(r.cpu_seconds, 4) for r in runs],
        "max_rss_bytes": [r.max_rss for r in runs],
    }


def emit_json(comparisons: list[Comparison], options: Options, benchmark: str) -> None:
    """With --json: print one JSON line holding every comparison's figures (after the text)."""
    if options.json:
        doc = {
            "benchmark": benchmark,
            "runs": options.runs,
            "warmup": options.warmup,
            "results": [c.to_json() for c in comparisons],
        }
        print(json.dumps(doc, sort_keys=True), flush=True)


def alternate(
    options: Options, lorry: Callable[[int], Run], peer: Callable[[int], Run]
) -> tuple[list[Run], list[Run]]:
    """Run both tools ``warmup + runs`` times, swapping who goes first every round.

    Swapping cancels any advantage of going first or second (a warm cache, the other tool's
    writeback); warm-up rounds are run and discarded. Returns (lorry runs, peer runs).
    """
    lorry_runs, peer_runs = rotate(options, [lorry, peer])
    return lorry_runs, peer_runs


def rotate(options: Options, tools: Sequence[Callable[[int], Run]]) -> list[list[Run]]:
    """Run every tool ``warmup + runs`` times, each round starting one tool further along.

    The generalisation of :func:`alternate` to more than two tools: every tool goes first,
    second, … equally often. Returns each tool's timed runs, in the order of ``tools``.
    """
    timed: list[list[Run]] = [[] for _ in tools]
    for i in range(options.warmup + options.runs):
        for k in range(len(tools)):
            j = (i + k) % len(tools)
            run = tools[j](i)
            settle()
            if i >= options.warmup:
                timed[j].append(run)
    return timed


#: One image's benchmark: (image name, work dir, registry, options) → its comparison(s).
BenchImageFn = Callable[[str, Path, RegistryServer, Options], "Comparison | list[Comparison]"]


def run_benchmark(
    kind: str, description: str, bench_image: BenchImageFn, argv: Sequence[str] | None = None
) -> int:
    """Parse options, run ``bench_image`` for each chosen image, print and emit the figures."""
    options = parse_options(description, argv)
    comparisons: list[Comparison] = []
    with work_dir(options) as work, start(work / "registry") as registry:
        for name in options.images:
            found = bench_image(name, work, registry, options)
            for comparison in found if isinstance(found, list) else [found]:
                print("\n".join(comparison.lines()), flush=True)
                comparisons.append(comparison)
    emit_json(comparisons, options, kind)
    return 0


def exit_with(main: Callable[[], int]) -> None:
    """Run a benchmark's ``main`` as a script: a BenchmarkError is one line and exit 1."""
    from _proc import BenchmarkError

    try:
        sys.exit(main())
    except BenchmarkError as err:
        print(f"benchmark failed: {err}", file=sys.stderr)
        sys.exit(1)
