"""Unpack benchmark: ``lorry unpack`` vs umoci and GNU tar (from local copies), and
``lorry unpack docker://…`` vs ``ctr images pull`` (pull + unpack from a registry).

Builds the images (``large``, ``many-small``; ``tiny`` for the smoke test) into an OCI layout,
fills one lorry store from it (``lorry copy oci:… lorry:…``, untimed) and pushes it to a local
``docker-registry``, then measures, every run into a fresh destination that is checked (the
tree is not empty / the image exists) and removed:

- ``unpack``: ``lorry unpack NAME DIR`` from the store, alternated with
  ``umoci unpack --rootless --image LAYOUT:bench BUNDLE`` (target ratio ≤ 0.2) and with GNU tar
  extracting the layer blobs in order into one directory (``tar -x -f BLOB -C DIR`` per layer,
  gzip handled by tar; no whiteouts: the floor of the work; target ≤ 1.3);
- ``unpack docker://``: ``lorry unpack docker://HOST/bench/NAME:bench DIR`` into a fresh store
  and DIR, alternated with ``ctr images pull --plain-http`` against a Debian ``containerd`` the
  benchmark starts for each run on a private config, root, state and socket (a fresh content
  store and snapshotter: nothing cached), stopped by its PID (target ≤ 0.3). ctr's CPU and RSS
  are the client's only: the daemon unpacks. Without containerd or ctr only this comparison is
  skipped, and why is printed.

Everything (images, store, registry storage, destinations) lives in one work directory, on
``/dev/shm`` (a tmpfs) by default when it has room, since the disk of the benchmark machine
varies up to 6x between runs; ``--workdir`` overrides it. The output says which filesystem was
used. Run: ``.venv/bin/python benchmarks/unpack.py --runs 3``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import (
    MB,
    TAG,
    BenchImage,
    Comparison,
    Options,
    build,
    exit_with,
    lorry_cmd,
    note,
    parse_options,
    rotate,
    serve,
    start,
    work_dir,
)
from _proc import BenchmarkError, Run, clean_env, run_checked, run_measured

from lorry.testing._process import stop_process
from lorry.testing.registry import RegistryServer

#: Targets printed next to the ratios (issue 12), by peer.
RATIO_TARGET = {"umoci unpack": 0.2, "GNU tar": 1.3, "ctr images pull": 0.3}
RSS_TARGET = 150 * MB
UMOCI = "/usr/bin/umoci"
TAR = "/usr/bin/tar"
CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
#: The tmpfs the destinations go to by default, and the room the 'large' image needs there
#: (layout + store + registry ≈ 1.6 GB, plus one ≈ 1.1 GB tree at a time).
TMPFS = Path("/dev/shm")
TMPFS_NEEDS = 4_000_000_000
_CONTAINERD_START = 30.0


def filesystem_of(path: Path) -> str:
    """The type of the filesystem ``path`` is on (the longest mount point above it)."""
    best, kind = "", "unknown"
    target = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = target == point or target.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        pass
    return kind


def choose_workdir(options: Options) -> Options:
    """``--workdir`` as given; else /dev/shm when it is a tmpfs with room; else the temp dir."""
    if options.workdir is not None:
        return options
    if TMPFS.is_dir() and filesystem_of(TMPFS) == "tmpfs":
        free = shutil.disk_usage(TMPFS).free
        needs = TMPFS_NEEDS if "large" in options.images else TMPFS_NEEDS // 4
        if free >= needs:
            return replace(options, workdir=TMPFS)
        note(f"{TMPFS} has {free / MB:.0f} MB free, {needs / MB:.0f} MB needed: using the disk")
    return options


def _empty(path: Path) -> bool:
    return not path.is_dir() or not any(path.iterdir())


def _rm(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        raise BenchmarkError(f"could not remove {path}")


def lorry_unpack(root: Path, source: str, dest: Path, env: dict[str, str], log: Path) -> Run:
    """``lorry unpack SOURCE DEST``; check DEST holds a tree; remove it."""
    run = run_measured(
        lorry_cmd(root, "unpack", "--progress", "plain", source, str(dest)), env=env, log=log
    )
    if _empty(dest):
        raise BenchmarkError(f"lorry unpack {source} succeeded but {dest} is empty")
    _rm(dest)
    return run


def umoci_unpack(image: BenchImage, dest: Path, env: dict[str, str], log: Path) -> Run:
    """``umoci unpack --rootless --image LAYOUT:bench BUNDLE``; check the rootfs; remove it."""
    cmd = [UMOCI, "unpack", "--rootless", "--image", f"{image.built.layout}:{TAG}", str(dest)]
    run = run_measured(cmd, env=env, log=log)
    if _empty(dest / "rootfs"):
        raise BenchmarkError(f"umoci unpack succeeded but {dest}/rootfs is empty")
    _rm(dest)
    return run


def tar_extract(image: BenchImage, dest: Path, env: dict[str, str], log: Path) -> Run:
    """GNU tar: every layer blob, bottom first, ``tar -x -f BLOB -C DEST``; check; remove."""
    dest.mkdir(parents=True)
    blobs = [str(image.built.blob_path(d)) for d in image.built.layer_digests]
    script = 'd=$1; shift; for b; do "$TAR" -x -f "$b" -C "$d"; done'
    run = run_measured(
        ["/bin/sh", "-ec", script, "sh", str(dest), *blobs], env={**env, "TAR": TAR}, log=log
    )
    if _empty(dest):
        raise BenchmarkError(f"tar extracted nothing into {dest}")
    _rm(dest)
    return run


class Containerd:
    """A private ``containerd``: its own config, root, state and sockets under ``work``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.socket = work / "containerd.sock"
        self.log = work / "containerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Write the config, start the daemon and wait until ``ctr version`` answers."""
        self.work.mkdir(parents=True)
        config = self.work / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{self.work / "root"}"\n'
            f'state = "{self.work / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{self.socket}"\n'
            f'[ttrpc]\n  address = "{self.socket}.ttrpc"\n'
            f'[debug]\n  address = "{self.work / "debug.sock"}"\n'
            '[metrics]\n  address = ""\n'
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [CONTAINERD, "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _CONTAINERD_START
        while True:
            if self.process.poll() is not None:
                raise BenchmarkError(f"containerd exited at start: {self._tail()}")
            if self.socket.exists():
                done = subprocess.run(
                    self.ctr("version"), capture_output=True, timeout=10, check=False
                )
                if done.returncode == 0:
                    return
            if time.monotonic() > deadline:
                self.stop()
                raise BenchmarkError(f"containerd did not answer: {self._tail()}")
            time.sleep(0.05)

    def ctr(self, *args: str) -> list[str]:
        """The ``ctr`` command line for this daemon (namespace ``bench``)."""
        return [CTR, "-a", str(self.socket), "-n", "bench", *args]

    def stop(self) -> None:
        """Stop the daemon by its PID and remove its files."""
        if self.process is not None:
            stop_process(self.process, 20.0)
            self.process = None
        _rm(self.work)

    def _tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-1500:]
        except OSError:
            return "(no log)"


def ctr_unavailable() -> str | None:
    """Why ctr cannot be measured here, or None when containerd and ctr exist."""
    for binary in (CONTAINERD, CTR):
        if shutil.which(binary) is None:
            return f"{binary} not found (Debian package containerd)"
    return None


def ctr_pull(ref: str, work: Path, i: int, env: dict[str, str], log: Path) -> Run:
    """A fresh containerd; ``ctr images pull --plain-http REF`` (fetch + unpack into the
    overlayfs snapshotter); check the image and its snapshots exist; stop it, remove it all."""
    daemon = Containerd(work / f"containerd-{i}")
    daemon.start()
    try:
        run = run_measured(daemon.ctr("images", "pull", "--plain-http", ref), env=env, log=log)
        images = run_checked(daemon.ctr("images", "ls", "-q"), env=env, log=log).decode()
        snapshots = run_checked(daemon.ctr("snapshots", "ls"), env=env, log=log).decode()
        if ref not in images.split() or len(snapshots.strip().splitlines()) < 2:
            raise BenchmarkError(f"ctr pulled {ref} but the image or its snapshots are missing")
    finally:
        daemon.stop()
    return run


def bench_image(
    name: str, work: Path, registry: RegistryServer, options: Options, skipped: list[dict[str, str]]
) -> list[Comparison]:
    """Build, store and serve one image; compare lorry with umoci, tar and ctr."""
    image = build(name, work / "images" / name)
    env = clean_env(work / "home")
    store = work / "store"
    local = f"bench/{name}:{TAG}"
    run_checked(
        lorry_cmd(store, "copy", "-q", f"oci:{image.built.layout}:{TAG}", f"lorry:{local}"),
        env=env,
        log=work / "lorry-fill.log",
    )
    remote = serve(image, registry)
    note(f"unpacking '{name}': {options.warmup} warm-up + {options.runs} timed runs per tool")
    ours, umoci, tar = rotate(
        options,
        [
            lambda i: lorry_unpack(store, local, work / f"lorry-{i}", env, work / "lorry.log"),
            lambda i: umoci_unpack(image, work / f"umoci-{i}", env, work / "umoci.log"),
            lambda i: tar_extract(image, work / f"tar-{i}", env, work / "tar.log"),
        ],
    )
    found: list[Comparison] = [
        Comparison("unpack", image, peer, ours, runs, RATIO_TARGET[peer], RSS_TARGET, short=short)
        for peer, short, runs in (("umoci unpack", "umoci", umoci), ("GNU tar", "tar", tar))
    ]
    why = ctr_unavailable()
    if why is not None:
        note(f"ctr images pull: skipped: {why}")
        skipped.append({"operation": "unpack docker://", "image": name, "reason": why})
        return found

    def lorry_remote(i: int) -> Run:
        root = work / f"lorry-root-{i}"
        source = f"docker://{remote}"
        run = lorry_unpack(root, source, work / f"lorry-r-{i}", env, work / "lorry-r.log")
        _rm(root)
        return run

    note(f"pull + unpack '{name}': {options.warmup} warm-up + {options.runs} timed runs per tool")
    try:
        remote_runs, ctr_runs = rotate(
            options,
            [lorry_remote, lambda i: ctr_pull(remote, work, i, env, work / "ctr.log")],
        )
    except BenchmarkError as err:
        reason = str(err).splitlines()[0]
        note(f"ctr images pull: skipped: {reason}")
        skipped.append({"operation": "unpack docker://", "image": name, "reason": reason})
        return found
    found.append(
        Comparison(
            "unpack docker://",
            image,
            "ctr images pull",
            remote_runs,
            ctr_runs,
            RATIO_TARGET["ctr images pull"],
            RSS_TARGET,
            short="ctr",
            remark="ctr's cpu and RSS are the client's only; containerd fetches and unpacks too",
        )
    )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Run the unpack benchmark for the chosen images; print the figures (and JSON)."""
    options = choose_workdir(
        parse_options("lorry unpack vs umoci, GNU tar and ctr images pull", argv)
    )
    comparisons: list[Comparison] = []
    skipped: list[dict[str, str]] = []
    with work_dir(options) as work:
        fs = filesystem_of(work)
        print(f"work directory and destinations on {fs} ({work.parent})", flush=True)
        with start(work / "registry") as registry:
            for name in options.images:
                for comparison in bench_image(name, work, registry, options, skipped):
                    print("\n".join(comparison.lines()), flush=True)
                    comparisons.append(comparison)
    for skip in skipped:
        what = f"{skip['operation']} '{skip['image']}'"
        print(f"{what} vs ctr images pull: skipped: {skip['reason']}", flush=True)
    if options.json:
        doc: dict[str, Any] = {
            "benchmark": "unpack",
            "runs": options.runs,
            "warmup": options.warmup,
            "filesystem": fs,
            "results": [c.to_json() for c in comparisons],
            "skipped": skipped,
        }
        print(json.dumps(doc, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    exit_with(main)
