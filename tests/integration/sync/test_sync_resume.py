"""Acceptance: a sync killed midway (SIGKILL) and run again copies only what is missing.

One image's own top layer stalls at the source; the first ``lorry sync`` is killed once every
other image is at the destination. The second run, with the fault gone, reports those images
``unchanged``, copies the stalled one, and asks the source for no blob but the stalled image's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sync_helpers import head, read_report, seed, write_config

from lorry.cli import run
from lorry.testing.faultproxy import Fault, FaultProxy, Stall

pytestmark = pytest.mark.integration

LIMIT = 30.0
REPOS = ["k/a", "k/b", "k/c"]


def test_a_killed_sync_run_again_copies_only_what_is_missing(
    registry_factory, tmp_path: Path
) -> None:
    src = registry_factory()
    seeded = seed(src, tmp_path, REPOS, ["1"])
    dest = registry_factory()
    held = seeded.images[("k/c", "1")]
    stalled = held.layer_digests[1]  # k/c's own layer; the base is shared with the others
    stall = Stall(0, 60.0)
    with FaultProxy(src.url) as proxy:
        proxy.add(Fault(path=f"/blobs/{stalled}$", times=-1, action=stall))
        cfg = write_config(
            tmp_path / "s.yaml",
            f"sources: [{{source: 'docker://{proxy.host}', repositories: {{allow: ['^k/']}}}}]\n"
            f"destinations: ['docker://{dest.host}']\n",
        )
        env = {**os.environ, "HOME": str(tmp_path / "home")}
        cmd = [sys.executable, "-m", "lorry", "sync", "-q", str(cfg)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        others = [(r, t) for (r, t) in seeded.images if r != "k/c"]
        try:
            deadline = time.monotonic() + LIMIT
            while not (
                stall.started.is_set()
                and all(
                    head(dest.host, r, t) == seeded.images[(r, t)].top_digest for r, t in others
                )
            ):
                if proc.poll() is not None:
                    err = proc.stderr.read().decode() if proc.stderr else ""
                    raise AssertionError(f"lorry sync exited {proc.returncode} early: {err}")
                assert time.monotonic() < deadline, "gave up waiting for the other images"
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert head(dest.host, "k/c", "1") is None
        proxy.clear()
        stall.release()
        seen = len(proxy.requests)

        report = tmp_path / "again.json"
        assert run(["sync", str(cfg), "-q", "--report", str(report)]) == 0
        again = proxy.requests[seen:]
    actions = {str(e["source"]).rpartition("/k/")[2]: e["action"] for e in read_report(report)}
    assert actions == {"a:1": "unchanged", "b:1": "unchanged", "c:1": "copied"}
    fetched = {
        r.path.rpartition("/")[2] for r in again if r.method == "GET" and "/blobs/" in r.path
    }
    own = {str(d) for d in [*held.layer_digests, held.config_digest]}
    assert str(stalled) in fetched
    assert fetched <= own, f"blobs fetched again that were already copied: {fetched - own}"
    for (repo, tag), built in seeded.images.items():
        assert head(dest.host, repo, tag) == built.top_digest
