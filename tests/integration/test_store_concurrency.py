"""Two processes ingesting the same blob: the bytes are written once and both succeed.

The processes are sequenced by their output, not by time: the first pauses half-way through
its ingest, the test starts the second and waits until it reports that it is waiting for the
ingest lock, then lets the first one finish (or kills it, to check that the second takes over
the partial data).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lorry.digest import Digest
from lorry.store import Store
from lorry.store.fsck import fsck

WORKER = str(Path(__file__).with_name("store_ingest_worker.py"))


def _source(tmp: Path, size: int) -> tuple[Path, Digest]:
    path = tmp / "source.bin"
    data = os.urandom(size)
    path.write_bytes(data)
    return path, Digest("sha256", hashlib.sha256(data).hexdigest())


def _start(root: Path, src: Path, digest: Digest, size: int, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, WORKER, str(root), str(src), str(digest), str(size), *extra]
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _read_until(proc: subprocess.Popen[str], prefix: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"process ended before printing {prefix!r}")


def _fetched(line: str) -> int:
    return int(line.split()[1].split("=")[1])


@pytest.mark.timeout(120)
def test_two_processes_same_100mb_blob_written_once(tmp_path: Path) -> None:
    size = 100 * 1000 * 1000
    src, digest = _source(tmp_path, size)
    root = tmp_path / "root"
    Store.open(root).close()
    first = _start(root, src, digest, size, "pause")
    assert _read_until(first, "locked") == "locked exists=False resumed=0"
    _read_until(first, "half")
    second = _start(root, src, digest, size)
    _read_until(second, "waiting")  # the second is blocked on the first one's ingest
    assert first.stdin is not None
    first.stdin.write("go\n")
    first.stdin.flush()
    one = _read_until(first, "result")
    assert _read_until(second, "locked") == "locked exists=True resumed=0"
    two = _read_until(second, "result")
    assert first.wait() == 0 and second.wait() == 0
    assert _fetched(one) == size and _fetched(two) == 0  # fetched and written once
    blobs = list((root / "blobs" / "sha256").iterdir())
    assert [b.name for b in blobs] == [digest.hex]
    assert not list((root / "ingest" / "sha256").iterdir())
    with Store.open(root) as store:
        assert fsck(store).ok


def test_waiter_takes_over_when_the_holder_dies(tmp_path: Path) -> None:
    size = 8 * 1024 * 1024
    src, digest = _source(tmp_path, size)
    root = tmp_path / "root"
    Store.open(root).close()
    first = _start(root, src, digest, size, "pause")
    _read_until(first, "half")
    second = _start(root, src, digest, size)
    _read_until(second, "waiting")
    first.send_signal(signal.SIGKILL)
    first.wait()
    locked = _read_until(second, "locked")
    assert locked == f"locked exists=False resumed={size // 2}"  # resumes from the partial
    assert _fetched(_read_until(second, "result")) == size - size // 2
    assert second.wait() == 0
    with Store.open(root) as store:
        assert store.content.info(digest).size == size
        assert fsck(store).ok
