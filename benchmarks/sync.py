"""Sync benchmark: ``lorry sync`` vs ``skopeo sync``, many small images, registry → registry.

Builds ``--repos`` repositories × ``--tags`` tags of small images with :mod:`lorry.testing`
(default 50 × 4 = 200 images of three layers: one of ``--bases`` shared base layers, a layer
shared by the tags of a repository and one of the tag's own; each image also has its own
config), pushes them to a local ``docker-registry`` (the source, with skopeo, untimed), then
alternates, every round into a **fresh destination registry** per tool (new storage, new port,
so neither tool finds anything to skip):

- ``sync``: the full sync. lorry: ``python -m lorry --root FRESH sync FILE.yaml`` with a sync
  file naming every repository and its tags (``referrers: false``: skopeo copies no
  signatures either; ``--referrers`` turns lorry's default back on). skopeo: ``skopeo sync
  --src yaml --dest docker FILE.yaml HOST2/mirror`` with a YAML of the same repositories and
  tags. Both put ``rNN:TAG`` at ``HOST2/mirror/rNN:TAG``. Target: ratio ≤ 0.3.
- ``sync-noop``: the same sync again, by the same tool (same ``--root``, same HOME), into the
  destination it just filled. Target: ratio ≤ 0.2.

Every run is checked: each of the images must be at the destination with the digest it was
built with (a manifest HEAD per image), and lorry's ``--report`` must say ``copied`` for every
image of a full sync and ``unchanged`` for every image of a no-op. In the last round each tool
also makes one untimed no-op through :class:`~lorry.testing.faultproxy.FaultProxy` proxies in
front of both registries; the requests they saw, per tag, are printed (target for lorry: ≤ 2
per tag). The timed runs go direct: the Python proxy's per-request cost would weigh on the
tool that asks more. Run: ``.venv/bin/python benchmarks/sync.py``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    MB,
    BenchImage,
    Comparison,
    Options,
    add_run_options,
    exit_with,
    lorry_cmd,
    note,
    run_options,
    settle,
    start,
    work_dir,
)
from _proc import BenchmarkError, Run, clean_env, run_measured

from lorry.testing.builder import BuiltImage, LayerSpec, build_image
from lorry.testing.faultproxy import FaultProxy, RequestRecord
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import SKOPEO_BINARY, SkopeoError, skopeo_copy

#: Targets printed next to the figures (issue 14).
FULL_RATIO_TARGET = 0.3
NOOP_RATIO_TARGET = 0.2
NOOP_REQUESTS_PER_TAG_TARGET = 2.0
#: The repository prefix both tools sync under at the destination.
PREFIX = "mirror"
#: skopeo sync with the flags every run uses: no signature policy, plain HTTP destination.
SKOPEO_SYNC = [
    SKOPEO_BINARY,
    "sync",
    "--insecure-policy",
    "--src",
    "yaml",
    "--dest",
    "docker",
    "--dest-tls-verify=false",
]


@dataclass(frozen=True)
class Shape:
    """How many repositories, tags and base layers, and how large each kind of layer is."""

    repos: int
    tags: int
    bases: int
    base: LayerSpec
    repo_layer: LayerSpec
    tag_layer: LayerSpec


#: The presets of ``--image``: ``standard`` is issue 14's set, ``tiny`` the smoke test's.
SHAPES: dict[str, Shape] = {
    "standard": Shape(
        50,
        4,
        5,
        LayerSpec(files=40, size=2_000_000),
        LayerSpec(files=20, size=400_000),
        LayerSpec(files=5, size=50_000),
    ),
    "tiny": Shape(
        3,
        2,
        2,
        LayerSpec(files=10, size=100_000),
        LayerSpec(files=5, size=20_000),
        LayerSpec(files=3, size=5_000),
    ),
}


@dataclass(frozen=True)
class SyncOptions:
    """The common benchmark options, plus the image set's shape."""

    common: Options
    preset: str
    shape: Shape
    referrers: bool = False


def parse_sync_options(argv: Sequence[str] | None = None) -> SyncOptions:
    """The other scripts' options (``--runs``, ``--warmup``, ``--json``, ``--keep``,
    ``--workdir``), with ``--image standard|tiny`` and ``--repos/--tags/--bases`` overrides."""
    parser = argparse.ArgumentParser(
        description="lorry sync vs skopeo sync: many small images, registry to registry"
    )
    parser.add_argument(
        "--image",
        choices=sorted(SHAPES),
        default="standard",
        help="image set preset (standard: 50 repos x 4 tags; tiny is for the smoke test)",
    )
    parser.add_argument("--repos", type=int, help="repositories (overrides the preset)")
    parser.add_argument("--tags", type=int, help="tags per repository (overrides the preset)")
    parser.add_argument("--bases", type=int, help="distinct base layers (overrides the preset)")
    parser.add_argument(
        "--referrers",
        action="store_true",
        help="let lorry look for referrers (its default; skopeo sync copies none)",
    )
    add_run_options(parser)
    ns = parser.parse_args(argv)
    common = run_options(parser, ns, [ns.image])
    preset = SHAPES[ns.image]
    shape = Shape(
        ns.repos or preset.repos,
        ns.tags or preset.tags,
        ns.bases or preset.bases,
        preset.base,
        preset.repo_layer,
        preset.tag_layer,
    )
    if min(shape.repos, shape.tags, shape.bases) < 1 or shape.repos > 1000:
        parser.error("--repos (at most 1000), --tags and --bases must be at least 1")
    return SyncOptions(common, ns.image, shape, ns.referrers)


@dataclass(frozen=True)
class SyncImage:
    """One built image: its repository and tag at the source, and what it was built as."""

    repo: str
    tag: str
    built: BuiltImage


@dataclass(frozen=True)
class ImageSet(BenchImage):
    """Every image of the benchmark; ``built`` (for :class:`Comparison`) is the first one."""

    shape: Shape = field(kw_only=True)
    images: tuple[SyncImage, ...] = field(kw_only=True)
    blobs: int = field(kw_only=True)
    blob_bytes: int = field(kw_only=True)

    @property
    def compressed(self) -> int:
        """Total size of the distinct blobs (layers and configs), in bytes."""
        return self.blob_bytes

    def repos(self) -> dict[str, list[str]]:
        """Repository → its tags, in build order."""
        out: dict[str, list[str]] = {}
        for image in self.images:
            out.setdefault(image.repo, []).append(image.tag)
        return out

    def describe(self) -> str:
        """One line: repositories × tags, bases, distinct blobs and their size."""
        s = self.shape
        return (
            f"{s.repos} repositories x {s.tags} tags = {len(self.images)} images, "
            f"{s.bases} shared bases, {self.blobs} distinct blobs, "
            f"{self.blob_bytes / MB:.1f} MB compressed"
        )

    def to_json(self) -> dict[str, Any]:
        """The set's figures as a JSON object."""
        return {
            "name": self.name,
            "repos": self.shape.repos,
            "tags": self.shape.tags,
            "bases": self.shape.bases,
            "images": len(self.images),
            "layers": len(self.built.layer_sizes),
            "blobs": self.blobs,
            "compressed_bytes": self.blob_bytes,
            "file_bytes": self.file_bytes,
            "files": self.files,
        }


def tag_name(j: int) -> str:
    """The ``j``-th tag of every repository: ``v1.0``, ``v1.1``, …"""
    return f"v1.{j}"


def build_set(name: str, shape: Shape, dest: Path) -> ImageSet:
    """Build every image, one OCI layout per repository, grouped by base.

    Images of one base share its seed, so the builder makes the same base layer for all of
    them; the repository and tag layers differ by their size (the builder keys content by seed,
    layer index and spec). Building by base keeps the builder's text pool cached.
    """
    started = time.perf_counter()
    images: list[SyncImage] = []
    blobs: dict[str, int] = {}
    files = file_bytes = 0
    for base in range(shape.bases):
        for r in range(base, shape.repos, shape.bases):
            repo = f"r{r:03d}" if shape.repos > 100 else f"r{r:02d}"
            for j in range(shape.tags):
                specs = [
                    shape.base,
                    _grown(shape.repo_layer, 1009 * r),
                    _grown(shape.tag_layer, 1013 * (r * shape.tags + j)),
                ]
                built = build_image(dest / repo, layers=specs, seed=base, tag=tag_name(j))
                images.append(SyncImage(repo, tag_name(j), built))
                layers = zip(specs, built.layer_digests, built.layer_sizes, strict=True)
                for spec, digest, size in layers:
                    if str(digest) not in blobs:
                        files, file_bytes = files + spec.files, file_bytes + spec.size
                        blobs[str(digest)] = size
                blobs[str(built.config_digest)] = len(built.config_bytes)
    images.sort(key=lambda im: (im.repo, im.tag))
    want_layers = shape.bases + shape.repos + shape.repos * shape.tags
    got_layers = len(blobs) - len(images)
    if got_layers != want_layers:
        raise BenchmarkError(f"built {got_layers} distinct layers, want {want_layers}")
    seconds = time.perf_counter() - started
    note(f"built {len(images)} images ({len(blobs)} blobs) in {seconds:.1f} s")
    return ImageSet(
        name,
        images[0].built,
        files,
        file_bytes,
        shape=shape,
        images=tuple(images),
        blobs=len(blobs),
        blob_bytes=sum(blobs.values()),
    )


def _grown(spec: LayerSpec, extra: int) -> LayerSpec:
    """``spec`` with ``extra`` more bytes: a different layer from the same seed."""
    return LayerSpec(spec.files, spec.size + extra, spec.random_fraction, spec.extras)


def seed_source(images: ImageSet, registry: RegistryServer) -> None:
    """Push every image to ``registry`` as ``rNN:TAG`` with skopeo, four repositories at a time
    (untimed). One image per base goes first and each repository's tags go in turn, so no two
    pushes upload the same blob at once (the registry can answer 500 to a HEAD meanwhile)."""
    started = time.perf_counter()

    def push(batch: Sequence[SyncImage]) -> None:
        for image in batch:
            src = f"oci:{image.built.layout}:{image.tag}"
            dst = f"docker://{registry.host}/{image.repo}:{image.tag}"
            try:
                skopeo_copy(src, dst, extra_args=["--preserve-digests", "--retry-times=3"])
            except SkopeoError as err:
                raise BenchmarkError(f"seeding the source registry: {err}") from err

    repos = list(images.repos())
    # repository rNN has base NN % bases: the first image of the first ``bases`` covers each
    leaders = [
        next(im for im in images.images if im.repo == r) for r in repos[: images.shape.bases]
    ]
    batches = [[im for im in images.images if im.repo == r and im not in leaders] for r in repos]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(push, [[im] for im in leaders]))
        list(pool.map(push, batches))
    check_registry(images, registry.host, "")
    note(f"pushed them to {registry.host} in {time.perf_counter() - started:.1f} s")


def check_registry(images: ImageSet, host: str, prefix: str, what: str = "source") -> None:
    """Every image must be at ``host`` under ``prefix`` with its built digest (a HEAD each)."""
    address, _, port = host.rpartition(":")
    conn = http.client.HTTPConnection(address, int(port), timeout=30)
    wrong: list[str] = []
    try:
        for image in images.images:
            repo = f"{prefix}/{image.repo}" if prefix else image.repo
            conn.request(
                "HEAD",
                f"/v2/{repo}/manifests/{image.tag}",
                headers={"Accept": image.built.media_type},
            )
            resp = conn.getresponse()
            resp.read()
            got = resp.getheader("Docker-Content-Digest", "")
            if resp.status != 200 or got != str(image.built.manifest_digest):
                wrong.append(f"{repo}:{image.tag} ({resp.status} {got or 'no digest'})")
    finally:
        conn.close()
    if wrong:
        more = f" and {len(wrong) - 3} more" if len(wrong) > 3 else ""
        raise BenchmarkError(
            f"{what} {host}: {len(wrong)} of {len(images.images)} images missing or wrong: "
            f"{', '.join(wrong[:3])}{more}"
        )


def lorry_file(
    images: ImageSet, src: str, dest: str, path: Path, *, referrers: bool = False
) -> Path:
    """Write lorry's sync file: one source per repository with its tags, one destination."""
    lines = [
        f"referrers: {str(referrers).lower()}",
        "destinations:",
        f"  - docker://{dest}/{PREFIX}",
        "sources:",
    ]
    for repo, tags in images.repos().items():
        lines.append(f"  - source: docker://{src}/{repo}")
        lines.append(f"    tags: [{', '.join(json.dumps(t) for t in tags)}]")
    path.write_text("\n".join(lines) + "\n")
    return path


def skopeo_file(images: ImageSet, src: str, path: Path) -> Path:
    """Write skopeo's ``--src yaml`` file: the same repositories and tags, plain HTTP."""
    lines = [f'"{src}":', "  tls-verify: false", "  images:"]
    for repo, tags in images.repos().items():
        lines.append(f"    {repo}: [{', '.join(json.dumps(t) for t in tags)}]")
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass(frozen=True)
class Counted:
    """The requests the proxies saw during one no-op sync, in front of source and destination."""

    requests: int
    per_tag: float
    kinds: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """The counts as a JSON object."""
        return {"requests": self.requests, "per_tag": round(self.per_tag, 4), "kinds": self.kinds}


def _kind(side: str, record: RequestRecord) -> str:
    """``src HEAD manifest``, ``dst GET ping``, …: what one request was for."""
    path = record.path
    if path.rstrip("/") == "/v2":
        what = "ping"
    elif "/manifests/" in path:
        what = "manifest"
    elif "/blobs/uploads/" in path:
        what = "upload"
    elif "/blobs/" in path:
        what = "blob"
    elif path.endswith("/tags/list"):
        what = "tags"
    elif "/referrers/" in path:
        what = "referrers"
    else:
        what = "other"
    return f"{side} {record.method} {what}"


def count(images: ImageSet, src: FaultProxy, dst: FaultProxy) -> Counted:
    """Sum and classify what both proxies saw."""
    kinds = Counter(_kind("src", r) for r in src.requests)
    kinds.update(_kind("dst", r) for r in dst.requests)
    total = sum(kinds.values())
    return Counted(total, total / len(images.images), dict(sorted(kinds.items())))


@dataclass
class Tool:
    """How one tool syncs: the command for a source, a destination and a run directory."""

    name: str
    label: str
    command: Callable[[str, str, Path, str], list[str]]
    check_report: Callable[[Path, str], None] | None = None


@dataclass
class Rounds:
    """One tool's timed full syncs, no-op syncs and the counted no-op."""

    full: list[Run] = field(default_factory=list)
    noop: list[Run] = field(default_factory=list)
    counted: Counted | None = None


def lorry_tool(images: ImageSet, *, referrers: bool = False) -> Tool:
    """``lorry --root ROOT sync FILE --report REPORT``, checking the report after each run."""

    def command(src: str, dest: str, run_dir: Path, label: str) -> list[str]:
        path = run_dir / f"lorry-{label}.yaml"
        config = lorry_file(images, src, dest, path, referrers=referrers)
        report = run_dir / f"report-{label}.json"
        report.unlink(missing_ok=True)
        return lorry_cmd(
            run_dir / "root", "sync", str(config), "--report", str(report), "--progress", "plain"
        )

    def check(run_dir: Path, label: str) -> None:
        summary = json.loads((run_dir / f"report-{label}.json").read_text())["summary"]
        n = len(images.images)
        want = {"copied": n, "unchanged": 0} if label == "full" else {"copied": 0, "unchanged": n}
        got = {k: summary[k] for k in want}
        if got != want or summary["failed"]:
            raise BenchmarkError(f"lorry sync ({label}) reported {summary}, want {want}")

    return Tool("lorry", "lorry sync", command, check)


def skopeo_tool(images: ImageSet) -> Tool:
    """``skopeo sync --src yaml --dest docker FILE HOST/mirror``."""

    def command(src: str, dest: str, run_dir: Path, label: str) -> list[str]:
        config = skopeo_file(images, src, run_dir / f"skopeo-{label}.yaml")
        return [*SKOPEO_SYNC, str(config), f"{dest}/{PREFIX}"]

    return Tool("skopeo", "skopeo sync", command)


def one_round(
    tool: Tool, images: ImageSet, work: Path, source: RegistryServer, i: int, counted: bool
) -> tuple[Run, Run, Counted | None]:
    """A full sync into a fresh registry, a no-op sync into it, and (``counted``) one more
    no-op through fault proxies whose requests are counted; every run checked; all removed."""
    run_dir = work / f"{tool.name}-{i}"
    run_dir.mkdir()
    env = clean_env(run_dir / "home")  # fresh per round, shared by its full and no-op syncs
    log = work / f"{tool.name}-sync.log"
    result: Counted | None = None
    with start(run_dir / "dest") as dest:

        def sync(src: str, dst: str, label: str) -> Run:
            run = run_measured(tool.command(src, dst, run_dir, label), env=env, log=log)
            check_registry(images, dest.host, PREFIX, f"{tool.label} ({label}) to")
            if tool.check_report is not None:
                tool.check_report(run_dir, label)
            return run

        full = sync(source.host, dest.host, "full")
        settle()
        noop = sync(source.host, dest.host, "noop")
        if counted:
            settle()
            with FaultProxy(source.url) as src_proxy, FaultProxy(dest.url) as dst_proxy:
                sync(src_proxy.host, dst_proxy.host, "noop")
                result = count(images, src_proxy, dst_proxy)
    shutil.rmtree(run_dir)
    return full, noop, result


def measure(
    images: ImageSet, work: Path, source: RegistryServer, options: Options, referrers: bool
) -> tuple[Rounds, Rounds]:
    """Run both tools ``warmup + runs`` rounds, swapping who goes first every round."""
    tools = [lorry_tool(images, referrers=referrers), skopeo_tool(images)]
    rounds = [Rounds(), Rounds()]
    total = options.warmup + options.runs
    for i in range(total):
        for k in range(len(tools)):
            j = (i + k) % len(tools)
            started = time.perf_counter()
            full, noop, counted = one_round(tools[j], images, work, source, i, i == total - 1)
            settle()
            note(
                f"round {i + 1}/{total} {tools[j].name}: full {full.seconds:.2f} s, "
                f"no-op {noop.seconds:.2f} s ({time.perf_counter() - started:.1f} s in all)"
            )
            if i >= options.warmup:
                rounds[j].full.append(full)
                rounds[j].noop.append(noop)
            rounds[j].counted = counted or rounds[j].counted
    return rounds[0], rounds[1]


def request_lines(lorry: Counted, skopeo: Counted) -> list[str]:
    """The counted no-op's requests per tag for both tools, lorry's next to its target."""
    out = []
    for label, counted, target in (("lorry", lorry, True), ("skopeo", skopeo, False)):
        verdict = "  (no target)"
        if target:
            met = counted.per_tag <= NOOP_REQUESTS_PER_TAG_TARGET
            verdict = f"  target <= {NOOP_REQUESTS_PER_TAG_TARGET:g}: {'met' if met else 'MISSED'}"
        out.append(
            f"  no-op requests {label:<6} {counted.requests:5d} = {counted.per_tag:.2f} per tag"
            f"{verdict}"
        )
        out.append("      " + ", ".join(f"{k} {n}" for k, n in counted.kinds.items()))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Build, serve, sync with both tools; print the figures (and JSON with --json)."""
    sync_options = parse_sync_options(argv)
    options = sync_options.common
    with work_dir(options) as work, start(work / "source") as source:
        images = build_set(sync_options.preset, sync_options.shape, work / "images")
        seed_source(images, source)
        note(
            f"syncing {len(images.images)} images: {options.warmup} warm-up + "
            f"{options.runs} runs per tool, each a full and a no-op sync"
        )
        lorry, skopeo = measure(images, work, source, options, sync_options.referrers)
    full = Comparison("sync", images, "skopeo sync", lorry.full, skopeo.full, FULL_RATIO_TARGET)
    noop = Comparison(
        "sync-noop", images, "skopeo sync", lorry.noop, skopeo.noop, NOOP_RATIO_TARGET
    )
    assert lorry.counted is not None and skopeo.counted is not None
    print("\n".join(full.lines()), flush=True)
    print("\n".join([*noop.lines(), *request_lines(lorry.counted, skopeo.counted)]), flush=True)
    if options.json:
        noop_json = noop.to_json()
        noop_json["requests"] = {
            "lorry": lorry.counted.to_json(),
            "peer": skopeo.counted.to_json(),
            "per_tag_target": NOOP_REQUESTS_PER_TAG_TARGET,
        }
        doc = {
            "benchmark": "sync",
            "runs": options.runs,
            "warmup": options.warmup,
            "results": [full.to_json(), noop_json],
        }
        print(json.dumps(doc, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    exit_with(main)
