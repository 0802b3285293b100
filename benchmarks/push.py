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
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from _common import (
    TAG,
    BenchImage,
    Comparison,
    Options,
    alternate,
    build,
    exit_with,
    lorry_cmd,
    note,
    run_benchmark,
    serve,
    start,
)
from _proc import BenchmarkError, Run, clean_env, run_measured

from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import SKOPEO_BINARY

#: The target printed next to the ratio (issue 7).
RATIO_TARGET = 0.6


def pushed_digest(registry: RegistryServer, repo: str, media_type: str) -> str:
    """The digest the registry reports for ``repo:bench`` (HEAD on the manifest)."""
    url = f"{registry.url}/v2/{repo}/manifests/{TAG}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": media_type})
    with urllib.request.urlopen(request, timeout=30) as resp:
        return str(resp.headers.get("Docker-Content-Digest", ""))


def into_fresh_registry(
    image: BenchImage, work: Path, tool: str, i: int, push: Callable[[str, Path], Run]
) -> Run:
    """Start a fresh registry, run ``push(dest_ref, log)``, check the digest, remove it all."""
    where = work / f"dest-{tool}-{i}"
    repo = f"{tool}-{i}/{image.name}"
    with start(where) as registry:
        run = push(f"{registry.host}/{repo}:{TAG}", work / f"{tool}-push.log")
        got = pushed_digest(registry, repo, image.built.media_type)
    shutil.rmtree(where)
    if got != str(image.built.manifest_digest):
        raise BenchmarkError(
            f"pushed {repo}: registry has {got}, want {image.built.manifest_digest}"
        )
    return run


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
