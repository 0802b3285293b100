"""A blob is re-hashed for reuse only when its file changed since it was last verified."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lorry.store.content as content_mod
from lorry.digest import Digest
from lorry.store import Store


def _hashing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the re-hashes is_sound does."""
    calls: list[str] = []
    real = content_mod.Hasher

    class Counting(real):  # type: ignore[misc, valid-type]
        def __init__(self, algorithm: str = "sha256") -> None:
            calls.append(algorithm)
            super().__init__(algorithm)

    monkeypatch.setattr(content_mod, "Hasher", Counting)
    return calls


def test_a_blob_verified_at_ingest_is_sound_without_rehash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300_000)
    with Store.open(tmp_path) as store:
        info = store.content.put_bytes(data)
        calls = _hashing(monkeypatch)
        assert store.content.is_sound(info.digest, len(data))
        assert calls == []
        assert not store.content.is_sound(info.digest, len(data) - 1)


def test_a_flipped_byte_of_the_same_size_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300_000)
    with Store.open(tmp_path) as store:
        digest = store.content.put_bytes(data).digest
        path = store.layout.blob(digest)
        st = path.stat()
        flipped = bytearray(data)
        flipped[1234] ^= 0x40
        path.chmod(0o644)
        path.write_bytes(bytes(flipped))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back: ctime still moves
        calls = _hashing(monkeypatch)
        assert not store.content.is_sound(digest, len(data))
        assert calls == ["sha256"]


def test_a_touched_but_right_blob_is_rehashed_once_then_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"x" * 70_000
    with Store.open(tmp_path) as store:
        digest = store.content.put_bytes(data).digest
        os.utime(store.layout.blob(digest))
        calls = _hashing(monkeypatch)
        assert store.content.is_sound(digest, len(data))
        assert store.content.is_sound(digest, len(data))
        assert calls == ["sha256"]
        assert not store.content.is_sound(Digest.of(b"absent"), 6)
