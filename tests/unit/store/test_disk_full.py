"""A full disk: the ingest fails with DiskFullError naming the store, not retried, store intact.

Uses a real 2 MiB tmpfs (needs root to mount); elsewhere the test is skipped.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry.digest import Digest
from lorry.errors import DiskFullError, is_retryable
from lorry.store import Store
from lorry.store.fsck import fsck


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_ingest_on_full_disk(small_fs: Path) -> None:
    data = os.urandom(3 * 1024 * 1024)
    digest = Digest.of(data)
    with Store.open(small_fs / "root") as store:
        with store.content.writer(digest, len(data)) as w:
            with pytest.raises(DiskFullError) as caught:
                for i in range(0, len(data), 256 * 1024):
                    w.write(data[i : i + 256 * 1024])
            kept = w.offset
        assert str(small_fs / "root") in str(caught.value)
        assert not is_retryable(caught.value)
        assert not store.content.exists(digest)
        # The partial data matches what the writer accepted: a resume continues from there.
        assert store.layout.ingest_data(digest).stat().st_size == kept
        with store.content.writer(digest, len(data)) as w:
            assert w.offset == kept
        assert fsck(store).ok
