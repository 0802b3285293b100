"""Saved upload sessions: atomic 0600 records, one claim at a time, unfit records dropped."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from lorry.digest import Digest
from lorry.transports.upload_state import UploadClaim, UploadRecord, UploadStates

DIGEST = Digest.of(b"blob")
HOME = "http://r.example:5000"
URL = f"{HOME}/v2/a/b/blobs/uploads/u1?_state=x"


class Clock:
    """A settable wall clock."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def states(tmp_path: Path, clock: Clock) -> UploadStates:
    return UploadStates(tmp_path / "uploads", clock=clock)


def _home(url: str) -> bool:
    return url.startswith(HOME + "/")


def _claim(states: UploadStates, digest: Digest = DIGEST) -> UploadClaim:
    claim = states.claim("r.example:5000", "a/b", digest)
    assert claim is not None
    return claim


def test_a_saved_session_loads_back_and_is_private(states: UploadStates) -> None:
    with _claim(states) as claim:
        claim.save(URL, 4096, 10_000, None)
        claim.save(URL + "2", 8192, 10_000, 1024)  # replaces the first
        record = claim.load(10_000, _home)
    assert record is not None
    assert (record.location, record.offset, record.size, record.min_chunk) == (
        URL + "2",
        8192,
        10_000,
        1024,
    )
    assert stat.S_IMODE(claim.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(states.directory.stat().st_mode) == 0o700
    assert [p.name for p in states.directory.iterdir() if p.name.startswith(".")] == []


def test_one_claim_at_a_time(states: UploadStates) -> None:
    first = _claim(states)
    assert states.claim("r.example:5000", "a/b", DIGEST) is None
    assert states.claim("r.example:5000", "a/c", DIGEST) is not None  # another repository
    first.release()
    assert states.claim("r.example:5000", "a/b", DIGEST) is not None


def test_a_finished_upload_leaves_nothing(states: UploadStates) -> None:
    claim = _claim(states)
    claim.save(URL, 1, 2, None)
    claim.discard()
    claim.release(finished=True)
    assert list(states.directory.iterdir()) == []


def _tamper(claim: UploadClaim, **fields: object) -> None:
    record = json.loads(claim.path.read_bytes())
    record.update(fields)
    claim.path.write_text(json.dumps(record))


@pytest.mark.parametrize(
    "fields",
    [
        {"digest": str(Digest.of(b"other"))},
        {"repository": "a/c"},
        {"registry": "s.example"},
        {"size": 9_999},
        {"offset": 10_001},
        {"location": "http://elsewhere.example/v2/a/b/blobs/uploads/u1"},
        {"saved_at": 1_000_000.0 - 7 * 86400},
        {"version": 2},
        {"offset": "12"},
    ],
)
def test_an_unfit_record_is_dropped(states: UploadStates, fields: dict[str, object]) -> None:
    with _claim(states) as claim:
        claim.save(URL, 4096, 10_000, None)
        _tamper(claim, **fields)
        assert claim.load(10_000, _home) is None
        assert not claim.path.exists()


def test_garbage_is_dropped(states: UploadStates) -> None:
    with _claim(states) as claim:
        claim.path.write_bytes(b"\x00not json")
        assert claim.load(10, _home) is None
        assert not claim.path.exists()


def test_old_records_are_swept(tmp_path: Path, clock: Clock) -> None:
    old = UploadStates(tmp_path / "uploads", clock=clock)
    with _claim(old, Digest.of(b"old")) as claim:
        claim.save(URL, 1, 2, None)
    stale = claim.path
    os.utime(stale, (clock.now - 8 * 86400, clock.now - 8 * 86400))
    with _claim(old, Digest.of(b"new")) as fresh:
        fresh.save(URL, 1, 2, None)
    assert stale.exists()  # one sweep per instance, and it ran before the save
    _claim(UploadStates(tmp_path / "uploads", clock=clock), DIGEST).release()
    assert not stale.exists()
    assert fresh.path.exists()


def test_a_failing_disk_costs_only_the_resume(
    states: UploadStates, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with _claim(states) as claim:

        def full(*_: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "replace", full)
        claim.save(URL, 1, 2, None)
        monkeypatch.undo()
        claim.save(URL, 2, 2, None)  # gave up after the first failure
        assert claim.load(2, _home) is None
    assert "cannot save upload progress" in caplog.text
    assert [p for p in states.directory.iterdir() if p.suffix != ".lock"] == []


def test_record_json_round_trips() -> None:
    record = UploadRecord("r", "a/b", str(DIGEST), 10, URL, 5, None, 12.5)
    assert UploadRecord.from_json(record.to_json()) == record


def test_a_url_with_credentials_is_never_saved(states: UploadStates) -> None:
    with _claim(states) as claim:
        claim.save(URL, 1, 2, None)
        claim.save("http://user:secret@r.example:5000/v2/a/b/blobs/uploads/u1", 2, 4, None)
        assert not claim.path.exists()  # the older record went too: it no longer says where
    assert all(b"secret" not in p.read_bytes() for p in states.directory.iterdir())
