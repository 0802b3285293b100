"""Copy benchmark: ``lorry copy`` vs ``skopeo copy``, registry → OCI layout and registry → registry.

Builds the same images as the pull benchmark and serves them from a local ``docker-registry``
(the source, pushed with skopeo), then measures two cases per image, both tools alternately,
every run into a fresh destination:

- ``copy-oci``: ``copy docker://HOST/bench/NAME:bench oci:FRESH_DIR:bench``; each layout is
  checked (its ``index.json`` names the image's manifest digest) and removed. Target: ratio
  ≤ 0.5 on 'large'.
- ``copy-reg``: ``copy docker://HOST/bench/NAME:bench docker://HOST2/TOOL-i/NAME:bench`` into
  a **fresh registry** every run (new storage, new port), as the push benchmark does: a
  destination that already held the blobs would let either tool skip or cross-mount them and
  upload nothing. Each copy is checked by the manifest digest the destination reports.
  Target: ratio ≤ 0.6.

lorry gets a fresh ``--root`` every run (removed afterwards), so no distribution metadata of an
earlier run is known to it. Both registries are on 127.0.0.1, which lorry talks plain HTTP to
without configuration (as in the pull benchmark); skopeo is told with ``--src-tls-verify=false``
(and ``--dest-tls-verify=false``). Prints the medians and the ratio lorry/skopeo next to the
targets. Run: ``.venv/bin/python benchmarks/copy_bench.py``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from _common import (
    TAG,
    BenchImage,
    Comparison,
    Options,
    alternate,
    build,
    emit_json,
    exit_with,
    into_fresh_registry,
    lorry_cmd,
    note,
    parse_options,
    serve,
    start,
    work_dir,
)
from _proc import BenchmarkError, Run, clean_env, run_measured

from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import SKOPEO_BINARY

#: Targets printed next to the ratios, by case and image (issue: lorry copy).
OCI_RATIO_TARGET = {"large": 0.5}
REGISTRY_RATIO_TARGET = 0.6
#: skopeo's common flags; the source registry is plain HTTP on loopback.
SKOPEO_COPY = [SKOPEO_BINARY, "copy", "--insecure-policy", "--quiet", "--src-tls-verify=false"]

#: A copy with one tool: (destination ref or transport string, log) → the measured run.
CopyFn = Callable[[str, Path], Run]


def lorry_copy(src: str, work: Path, env: dict[str, str], i: int) -> CopyFn:
    """A ``lorry copy docker://SRC DEST`` with a fresh ``--root`` (removed afterwards)."""

    def copy(dest: str, log: Path) -> Run:
        root = work / f"lorry-root-{i}"
        cmd = lorry_cmd(root, "copy", f"docker://{src}", dest, "--progress", "plain")
        run = run_measured(cmd, env=env, log=log)
        shutil.rmtree(root, ignore_errors=True)
        return run

    return copy


def skopeo_copy(src: str, env: dict[str, str], *extra: str) -> CopyFn:
    """A ``skopeo copy [EXTRA] docker://SRC DEST``."""

    def copy(dest: str, log: Path) -> Run:
        return run_measured([*SKOPEO_COPY, *extra, f"docker://{src}", dest], env=env, log=log)

    return copy


def layout_digest(layout: Path) -> str:
    """The manifest digest ``index.json`` of the OCI layout names (its only entry)."""
    try:
        index = json.loads((layout / "index.json").read_text())
        return str(index["manifests"][0]["digest"])
    except (OSError, ValueError, KeyError, IndexError) as err:
        raise BenchmarkError(f"copied into {layout}, but it has no readable index.json") from err


def into_fresh_layout(image: BenchImage, work: Path, tool: str, i: int, copy: CopyFn) -> Run:
    """Run ``copy("oci:FRESH:bench", log)``, check the layout's digest, remove the layout."""
    dest = work / f"{tool}-layout-{i}"
    run = copy(f"oci:{dest}:{TAG}", work / f"{tool}-copy-oci.log")
    got = layout_digest(dest)
    shutil.rmtree(dest)
    if got != str(image.built.manifest_digest):
        raise BenchmarkError(f"{tool} copied to {dest}: {got}, want {image.built.manifest_digest}")
    return run


def bench_image(
    name: str, work: Path, registry: RegistryServer, options: Options
) -> list[Comparison]:
    """Build and serve one image; copy it to a layout, then to a registry, with both tools."""
    image = build(name, work / "images" / name)
    src = serve(image, registry)
    env = clean_env(work / "home")

    note(f"copying {src} to OCI layouts: {options.warmup} warm-up + {options.runs} runs per tool")
    lorry_runs, skopeo_runs = alternate(
        options,
        lambda i: into_fresh_layout(image, work, "lorry", i, lorry_copy(src, work, env, i)),
        lambda i: into_fresh_layout(image, work, "skopeo", i, skopeo_copy(src, env)),
    )
    to_oci = Comparison(
        "copy-oci", image, "skopeo copy", lorry_runs, skopeo_runs, OCI_RATIO_TARGET.get(name)
    )

    note(f"copying {src} to fresh registries: {options.warmup} warm-up + {options.runs} runs")
    skopeo_reg = skopeo_copy(src, env, "--dest-tls-verify=false")
    lorry_runs, skopeo_runs = alternate(
        options,
        lambda i: into_fresh_registry(
            image,
            work,
            "lorry",
            i,
            lorry_copy(src, work, env, i),
            scheme="docker://",
            label="copy-reg",
        ),
        lambda i: into_fresh_registry(
            image, work, "skopeo", i, skopeo_reg, scheme="docker://", label="copy-reg"
        ),
    )
    to_registry = Comparison(
        "copy-reg", image, "skopeo copy", lorry_runs, skopeo_runs, REGISTRY_RATIO_TARGET
    )
    return [to_oci, to_registry]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the copy benchmark for the chosen images; print the figures."""
    options = parse_options(
        "lorry copy vs skopeo copy, registry to OCI layout and registry to registry", argv
    )
    comparisons: list[Comparison] = []
    with work_dir(options) as work, start(work / "registry") as registry:
        for name in options.images:
            for comparison in bench_image(name, work, registry, options):
                print("\n".join(comparison.lines()), flush=True)
                comparisons.append(comparison)
    emit_json(comparisons, options, "copy")
    return 0


if __name__ == "__main__":
    exit_with(main)
