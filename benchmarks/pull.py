"""Pull benchmark: ``lorry pull`` into a fresh store vs ``skopeo copy docker://… oci:DIR``.

Builds the images (``large``: 8 layers, ≈500 MB gzip, ≈1.06 GB of tar, ≈40.8k files;
``many-small``: 40 layers of ≈3 MB), pushes them to a local ``docker-registry`` with skopeo,
then pulls each one in turn with ``lorry pull`` (default: blobs verified by digest, DiffIDs taken
as the config's claim), ``lorry pull --verify-diffids`` (every layer inflated and its DiffID
checked while it streams), skopeo and the stack's floor (``_floor_fetch.py``: the imports of
asyncio, anyio, click and sqlite3 plus a bare three-thread ``http.client`` fetch that verifies
every blob's sha256, no lorry code), every run into a fresh destination, and prints the median
seconds, the ratio lorry/skopeo of each mode, the floor's ratio, and lorry's peak RSS next to
the targets of issue 11. Run: ``.venv/bin/python benchmarks/pull.py``.
"""

from __future__ import annotations

import shutil
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

from _common import (
    MB,
    TAG,
    Comparison,
    Options,
    build,
    exit_with,
    lorry_cmd,
    note,
    rotate,
    run_benchmark,
    serve,
)
from _proc import BenchmarkError, Run, clean_env, run_checked, run_measured

from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import SKOPEO_BINARY

#: Targets printed next to the figures (issue 11), per mode and image.
RATIO_TARGET = {
    "pull": {"large": 0.6, "many-small": 0.8},
    "pull --verify-diffids": {"large": 1.45},
}
RSS_TARGET = 100 * MB
#: The bare client whose time is printed as the floor of a pull on lorry's stack.
FLOOR_SCRIPT = Path(__file__).with_name("_floor_fetch.py")


def lorry_pull(ref: str, work: Path, env: dict[str, str], i: int, *flags: str) -> Run:
    """``lorry pull REF`` into a fresh store; check the image is there; remove the store."""
    root = work / f"lorry-store-{i}"
    log = work / "lorry-pull.log"
    cmd = lorry_cmd(root, "pull", ref, "--progress", "plain", *flags)
    run = run_measured(cmd, env=env, log=log)
    if not run_checked(lorry_cmd(root, "images", "-q"), env=env, log=log).strip():
        raise BenchmarkError(f"lorry pull {ref} succeeded but the store at {root} has no image")
    shutil.rmtree(root)
    return run


def skopeo_pull(ref: str, work: Path, env: dict[str, str], i: int) -> Run:
    """``skopeo copy docker://REF oci:DIR:bench`` into a fresh layout; remove it afterwards."""
    dest = work / f"skopeo-layout-{i}"
    cmd = [SKOPEO_BINARY, "copy", "--insecure-policy", "--quiet", "--src-tls-verify=false"]
    run = run_measured(
        [*cmd, f"docker://{ref}", f"oci:{dest}:{TAG}"], env=env, log=work / "skopeo-pull.log"
    )
    if not (dest / "index.json").is_file():
        raise BenchmarkError(f"skopeo copy {ref} succeeded but wrote no {dest}/index.json")
    shutil.rmtree(dest)
    return run


def floor_fetch(ref: str, work: Path, env: dict[str, str], i: int) -> Run:
    """The stack's floor (``_floor_fetch.py``: its imports and a bare verified fetch)."""
    dest = work / f"floor-{i}"
    host, _, rest = ref.partition("/")
    repo, _, tag = rest.rpartition(":")
    run = run_measured(
        [sys.executable, str(FLOOR_SCRIPT), host, repo, tag, str(dest)],
        env=env,
        log=work / "floor-fetch.log",
    )
    shutil.rmtree(dest)
    return run


def bench_image(
    name: str, work: Path, registry: RegistryServer, options: Options
) -> list[Comparison]:
    """Build, serve and pull one image with lorry (both modes) and skopeo; compare each mode."""
    image = build(name, work / "images" / name)
    ref = serve(image, registry)
    env = clean_env(work / "home")
    note(f"pulling {ref}: {options.warmup} warm-up + {options.runs} timed runs per tool")
    default, eager, skopeo, floor = rotate(
        options,
        [
            lambda i: lorry_pull(ref, work, env, i),
            lambda i: lorry_pull(ref, work, env, i, "--verify-diffids"),
            lambda i: skopeo_pull(ref, work, env, i),
            lambda i: floor_fetch(ref, work, env, i),
        ],
    )
    at_floor = statistics.median(r.seconds for r in floor)
    at_skopeo = statistics.median(r.seconds for r in skopeo)
    remark = (
        f"the stack's floor: its imports + a bare 3-thread verified fetch, no lorry code, "
        f"{at_floor:.3f} s = {at_floor / at_skopeo:.2f} x skopeo"
    )
    return [
        Comparison(
            mode,
            image,
            "skopeo copy",
            runs,
            skopeo,
            RATIO_TARGET[mode].get(name),
            RSS_TARGET,
            remark=remark if mode == "pull" else "",
        )
        for mode, runs in (("pull", default), ("pull --verify-diffids", eager))
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the pull benchmark for the chosen images; print the figures."""
    return run_benchmark(
        "pull", "lorry pull vs skopeo copy, on a local registry", bench_image, argv
    )


if __name__ == "__main__":
    exit_with(main)
