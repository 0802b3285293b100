"""BlobMove, the per-blob step of every image move: reuse, words, the resume rule, Waiting."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import anyio
import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, UnavailableError
from lorry.oci import Descriptor
from lorry.ops.blob_move import COPY_WORDS, PULL_WORDS, BlobMove
from lorry.progress import ProgressEvent
from lorry.transports import BlobOpener, ImageDestination, ImageSource, Mounted, Reuse, WaitHook
from lorry.transports.files import FileBlobStream

DATA = bytes(range(256)) * 8192  # 2 MiB: two 1 MiB chunks
DESC = Descriptor(mt.OCI_LAYER_GZIP, Digest.of(DATA), len(DATA))


class _Source:
    name = "test-source"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offsets: list[int] = []

    def open_blob(self, desc: Descriptor, offset: int = 0) -> FileBlobStream:
        self.offsets.append(offset)
        return FileBlobStream(self.path, offset)


class _Dest:
    """Keeps ``partial`` bytes as if a killed run left them; checks the digest like a writer."""

    name = "test-dest"

    def __init__(self, reuse: Reuse = False, partial: bytes = b"", wait: int = 0) -> None:
        self.reuse = reuse
        self.partial = partial
        self.wait = wait
        self.got = b""

    def reuse_blob(self, desc: Descriptor) -> Reuse:
        return self.reuse

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        for _ in range(self.wait):
            assert on_wait is not None
            on_wait()
        data = self.partial + b"".join(open_at(len(self.partial)))
        if Digest.of(data) != desc.digest:
            raise IntegrityError(f"blob {desc.digest}: digest mismatch")
        self.got = data


class _Progress:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def emit(self, event: ProgressEvent) -> None:
        self.events.append(event)

    @contextmanager
    def exempt(self) -> Iterator[None]:
        yield


@pytest.fixture
def source(tmp_path: Path) -> _Source:
    path = tmp_path / "blob"
    path.write_bytes(DATA)
    return _Source(path)


def _run(move: BlobMove) -> tuple[str, list[tuple[str, int | None]]]:
    progress = _Progress()
    status = anyio.run(move.run, progress)
    return status, [(e.status, e.current) for e in progress.events]


def test_a_copy_says_copying_from_zero_then_copied(source: _Source) -> None:
    dest = _Dest()
    status, events = _run(
        BlobMove(cast(ImageSource, source), cast(ImageDestination, dest), DESC, words=COPY_WORDS)
    )
    assert status == "Copied" and dest.got == DATA
    assert events[0] == ("Copying", 0)
    assert events[-1] == ("Copied", None)


def test_a_pull_says_no_zero_line_and_verifies_before_complete(source: _Source) -> None:
    status, events = _run(
        BlobMove(cast(ImageSource, source), cast(ImageDestination, _Dest()), DESC, words=PULL_WORDS)
    )
    assert status == "Download complete"
    assert ("Downloading", 0) not in events
    assert [s for s, _ in events][-2:] == ["Verifying Checksum", "Download complete"]


def test_reuse_reads_nothing_and_names_the_mount(source: _Source) -> None:
    dest = _Dest(reuse=Mounted("team/base"))
    status, _ = _run(BlobMove(cast(ImageSource, source), cast(ImageDestination, dest), DESC))
    assert status == "Mounted from team/base" and source.offsets == [] and dest.got == b""


def test_a_mismatch_after_resuming_is_retried_from_zero_but_a_fresh_one_is_final(
    source: _Source,
) -> None:
    bad_start = _Dest(partial=b"x" * 1000)  # a killed run left bytes that are wrong
    move = BlobMove(cast(ImageSource, source), cast(ImageDestination, bad_start), DESC)
    with pytest.raises(UnavailableError, match="retrying from the start"):
        _run(move)
    assert source.offsets == [1000]
    wrong = Descriptor(mt.OCI_LAYER_GZIP, Digest.of(b"other"), len(DATA))
    fresh = BlobMove(cast(ImageSource, source), cast(ImageDestination, _Dest()), wrong)
    with pytest.raises(IntegrityError):
        _run(fresh)


def test_waiting_for_another_writer_is_said(source: _Source) -> None:
    status, events = _run(
        BlobMove(cast(ImageSource, source), cast(ImageDestination, _Dest(wait=60)), DESC)
    )
    assert status == "Copied"
    assert [s for s, _ in events].count("Waiting") == 2  # every 50 polls


class _ExemptCounting(_Progress):
    """Counts the sections where no bytes are expected, and whether one is still open."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = 0
        self.open = 0

    @contextmanager
    def exempt(self) -> Iterator[None]:
        self.entered += 1
        self.open += 1
        try:
            yield
        finally:
            self.open -= 1


class _SlowCommit(_Dest):
    """Takes a while to commit once every byte is in, as a registry finishing an upload."""

    def put_blob(
        self, desc: Descriptor, open_at: BlobOpener, on_wait: WaitHook | None = None
    ) -> None:
        super().put_blob(desc, open_at, on_wait)
        time.sleep(0.05)


def test_the_commit_after_the_last_byte_is_exempt_from_the_stall_check_and_then_not(
    source: _Source,
) -> None:
    progress = _ExemptCounting()
    move = BlobMove(cast(ImageSource, source), cast(ImageDestination, _SlowCommit()), DESC)
    assert anyio.run(move.run, progress) == "Copied"
    assert (progress.entered, progress.open) == (1, 0)
