"""SIGKILL a store writer at many points; the store must stay clean and the work be reused.

The writer (``store_crash_writer.py``) ingests, commits, registers, creates and tags one image,
and kills itself at a chosen point: after N chunks of the layer (spread by byte count), or at
the K-th fsync, rename or SQL statement (spread by step). After each kill, ``fsck`` must find no
damage, and repeating the operation must complete, reusing every byte already handed over.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.store import Store
from lorry.store.fsck import fsck

WRITER = Path(__file__).with_name("store_crash_writer.py")
_spec = importlib.util.spec_from_file_location("store_crash_writer", WRITER)
assert _spec is not None and _spec.loader is not None
writer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(writer)


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Digest, Digest]:
    """A ~1.3 MB gzip layer: its path, blob digest and DiffID."""
    raw = random.Random(7).randbytes(1_300_000)
    comp = gzip.compress(raw, compresslevel=1)
    path = tmp_path_factory.mktemp("layer") / "layer.gz"
    path.write_bytes(comp)
    return path, Digest.of(comp), Digest.of(raw)


def _plan(tmp: Path, layer: tuple[Path, Digest, Digest], name: str) -> Path:
    path, blob, diff = layer
    root = tmp / name
    Store.open(root).close()  # the store exists before the operation starts
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [str(diff)]},
    }
    plan = {
        "root": str(root),
        "layer_path": str(path),
        "blob": str(blob),
        "media_type": mt.OCI_LAYER_GZIP,
        "config": json.dumps(config),
        "name": "registry.example/app",
        "tag": "v1",
    }
    plan_path = tmp / f"{name}.json"
    plan_path.write_text(json.dumps(plan))
    return plan_path


def _spawn(plan: Path, spec: str) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [sys.executable, str(WRITER), str(plan), spec], capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout.splitlines()


def _kill_points(tmp: Path, layer: tuple[Path, Digest, Digest]) -> list[str]:
    rc, out = _spawn(_plan(tmp, layer, "count"), "count")
    assert rc == 0, out
    counts = json.loads(next(line for line in out if line.startswith("counts "))[7:])
    chunks = -(-layer[0].stat().st_size // writer.CHUNK)
    points = [f"bytes:{n}" for n in range(0, chunks, max(1, chunks // 20))]
    points += [f"fsync:{k}" for k in range(1, counts["fsync"] + 1)]
    points += [f"replace:{k}" for k in range(1, counts["replace"] + 1)]
    step = max(1, counts["sql"] // 25)
    points += [f"sql:{k}" for k in range(1, counts["sql"] + 1, step)]
    return points


def _check_after(plan_path: Path, handed: int, size: int) -> dict[str, Any]:
    plan = json.loads(plan_path.read_text())
    with Store.open(plan["root"]) as store:
        report = fsck(store)
        assert report.ok, report.problems
    found = writer.run(plan)
    # Every byte the killed writer handed over is reused: none is written twice.
    assert found["exists"] or found["resumed"] >= handed, (found, handed)
    with Store.open(plan["root"]) as store:
        report = fsck(store)
        assert report.ok, report.problems
        ref = store.refs.get(plan["name"], tag=plan["tag"])
        assert ref is not None
        assert store.content.info(Digest.parse(plan["blob"])).size == size
        assert [d.name for d in (Path(plan["root"]) / "blobs" / "sha256").iterdir()]
    return found


def test_sigkill_at_many_points_leaves_a_clean_resumable_store(
    tmp_path: Path, layer: tuple[Path, Digest, Digest]
) -> None:
    points = _kill_points(tmp_path, layer)
    assert len(points) >= 50, points
    size = layer[0].stat().st_size
    reused_partial = reused_blob = 0
    for i, spec in enumerate(points):
        plan = _plan(tmp_path, layer, f"kill{i}")
        rc, out = _spawn(plan, spec)
        assert rc == -signal.SIGKILL, (spec, rc, out)
        handed = max((int(line.split()[1]) for line in out if line.startswith("handed")), default=0)
        found = _check_after(plan, handed, size)
        reused_partial += bool(found["resumed"])
        reused_blob += bool(found["exists"])
    # The points really are spread: some kills left partial data, some a committed blob.
    assert reused_partial >= 10 and reused_blob >= 10, (reused_partial, reused_blob)


def test_writer_completes_without_kill(tmp_path: Path, layer: tuple[Path, Digest, Digest]) -> None:
    plan = _plan(tmp_path, layer, "plain")
    rc, out = _spawn(plan, "count")
    assert rc == 0 and out[-1] == "done"
    root = json.loads(plan.read_text())["root"]
    assert not [p for p in (Path(root) / "ingest" / "sha256").iterdir()]  # nothing left over
    assert os.path.exists(Path(root) / "blobs" / "sha256" / layer[1].hex)
