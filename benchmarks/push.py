"""Push benchmark: ``lorry push`` from its store vs ``skopeo copy oci:DIR docker://…``.

Builds the same images as the pull benchmark, serves them from a source registry, fills one
lorry store with ``lorry pull`` (once, untimed), then pushes each image with both tools
alternately. Every run pushes into a fresh repository of a **fresh registry** (new storage, new
port): a registry that already held the blobs, or a repository lorry's distribution metadata
knows, would let lorry skip or cross-mount them and measure no upload at all. skopeo pushes the
built OCI layout. Each push is checked by the manifest digest the registry reports. Prints the
medians and the ratio lorry/skopeo next to the target (≤ 0.6).
Run: ``.venv/bin/python benchmarks/push.py``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from _common import (
    TAG,
    BenchImage,
    Comparison,
    Options,
    alternate,
    build,
    exit_with,
    into_fresh_registry,
    lorry_cmd,
    note,
    run_benchmark,
    serve,
)
from _proc import Run, clean_env, run_measured

from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import SKOPEO_BINARY

#: The target printed next to the ratio (issue 7).
RATIO_TARGET = 0.6


def lorry_push(image: BenchImage, src: str, store: Path, env: dict[str, str], i: int) -> Run:
    """Time ``lorry push SRC DEST`` of the pulled image into a fresh registry."""

    def push(dest: str, log: Path) -> Run:
        return run_measured(
            lorry_cmd(store, "push", src, dest, "--progress", "plain"), env=env, log=log
        )

    return into_fresh_registry(image, store.parent, "lorry", i, push)


def skopeo_push(image: BenchImage, work: Path, env: dict[str, str], i: int) -> Run:
    """Time ``skopeo copy oci:LAYOUT:bench docker://…`` into a fresh registry."""
    cmd = [SKOPEO_BINARY, "copy", "--insecure-policy", "--quiet", "--dest-tls-verify=false"]
    source = f"oci:{image.built.layout}:{TAG}"

    def push(dest: str, log: Path) -> Run:
        return run_measured(
            [*cmd, "--preserve-digests", source, f"docker://{dest}"], env=env, log=log
        )

    return into_fresh_registry(image, work, "skopeo", i, push)


def bench_image(name: str, work: Path, registry: RegistryServer, options: Options) -> Comparison:
    """Build and serve one image, fill a lorry store from it, push it with both tools."""
    image = build(name, work / "images" / name)
    src = serve(image, registry)
    env = clean_env(work / "home")
    store = work / f"store-{name}"
    fill = run_measured(
        lorry_cmd(store, "pull", src, "--progress", "plain"), env=env, log=work / "lorry-pull.log"
    )
    note(f"filled the lorry store from {src} in {fill.seconds:.2f} s (untimed)")
    note(f"pushing '{name}': {options.warmup} warm-up + {options.runs} timed runs per tool")
    lorry_runs, skopeo_runs = alternate(
        options,
        lambda i: lorry_push(image, src, store, env, i),
        lambda i: skopeo_push(image, work, env, i),
    )
    shutil.rmtree(store)
    return Comparison("push", image, "skopeo copy", lorry_runs, skopeo_runs, RATIO_TARGET)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the push benchmark for the chosen images; print the figures."""
    return run_benchmark(
        "push", "lorry push vs skopeo copy, each into a fresh local registry", bench_image, argv
    )


if __name__ == "__main__":
    exit_with(main)
