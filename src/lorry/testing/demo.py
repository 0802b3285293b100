"""``python -m lorry.testing.demo``: lorry's first run, offline, against a registry it starts.

What ``scripts/try`` runs: a CNCF registry on 127.0.0.1 (Debian ``docker-registry``) with its
storage in a temporary directory, seeded with a small built image; then the lorry commands a
newcomer wants to see — pull with docker's progress, images, inspect, copy, unpack —
each printed before it runs, in a store of its own (``--root``); then everything it started is
stopped and removed. Exits non-zero as soon as a command fails.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from lorry.testing.builder import build_image
from lorry.testing.registry import start_registry

__all__ = ["main"]


def _lorry() -> str:
    """The ``lorry`` console script beside this Python (the venv's)."""
    beside = Path(sys.executable).parent / "lorry"
    return str(beside) if beside.exists() else shutil.which("lorry") or "lorry"


def _run(argv: list[str], show: list[str]) -> None:
    """Print the command as a user would type it, then run it; stop on failure."""
    print(f"\n$ {shlex.join(show)}", flush=True)
    done = subprocess.run(argv, check=False)
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def main(argv: list[str] | None = None) -> int:
    """Start the registry, seed it, run the tour, stop it."""
    parser = argparse.ArgumentParser(prog="lorry-try", description=__doc__)
    parser.add_argument("--keep", type=Path, help="Keep the store and layout in this directory.")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lorry-try-"))
    out = args.keep.resolve() if args.keep else work
    try:
        print("starting a CNCF registry on 127.0.0.1 and seeding it with a small image ...")
        with start_registry(work / "registry") as registry:
            built = build_image(work / "seed", layers=3, seed=42, tag="1.0")
            lorry = _lorry()
            root = out / "store"
            ref = f"{registry.host}/demo/hello:1.0"
            seed = [lorry, "--root", str(work / "seed-store"), "copy", "-q"]
            _run(
                [*seed, f"oci:{built.layout}:1.0", f"docker://{ref}"],
                ["lorry", "copy", f"oci:{built.layout}:1.0", f"docker://{ref}"],
            )
            base = [lorry, "--root", str(root)]
            for cmd in (
                ["pull", ref],
                ["images"],
                [
                    "inspect",
                    "--format",
                    "{{.Id}} {{.Os}}/{{.Architecture}} {{len .RootFS.Layers}} layers",
                    ref,
                ],
                ["copy", f"docker://{ref}", f"oci:{out / 'layout'}:1.0"],
                ["unpack", ref, str(out / "rootfs")],
                ["fsck"],
            ):
                _run([*base, *cmd], ["lorry", *cmd])
        print(
            f"\nregistry stopped. Store: {root} (lorry --root {root} images)"
            if args.keep
            else "\nregistry stopped and its files removed."
        )
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
