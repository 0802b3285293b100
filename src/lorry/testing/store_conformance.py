"""The content-store conformance suite: the contract every ContentStore implementation keeps.

Subclass :class:`ContentStoreConformance` in a test module and provide the ``store`` fixture
(a fresh, empty store per test); pytest then runs every ``test_*`` method against it::

    class TestLocal(ContentStoreConformance):
        @pytest.fixture
        def store(self, tmp_path): return Store.open(tmp_path).content
"""

from __future__ import annotations

import gzip
import threading

import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import IntegrityError, NotFoundError
from lorry.store.protocols import ContentStore

__all__ = ["ContentStoreConformance"]

_DATA = bytes(range(256)) * 1024  # 256 KiB


class ContentStoreConformance:
    """Contract tests for a :class:`~lorry.store.content.ContentStore` (``store`` fixture)."""

    def test_put_then_read(self, store: ContentStore) -> None:
        info = store.put_bytes(_DATA)
        assert info.digest == Digest.of(_DATA) and info.size == len(_DATA)
        assert store.exists(info.digest)
        assert store.read_bytes(info.digest) == _DATA
        with store.open_blob(info.digest) as f:
            assert f.read() == _DATA
        assert store.info(info.digest).size == len(_DATA)

    def test_missing_blob_is_not_found(self, store: ContentStore) -> None:
        digest = Digest.of(b"absent")
        assert not store.exists(digest)
        with pytest.raises(NotFoundError):
            store.info(digest)
        with pytest.raises(NotFoundError):
            store.open_blob(digest)

    def test_wrong_digest_is_rejected_and_nothing_visible(self, store: ContentStore) -> None:
        digest = Digest.of(b"something else")
        with store.writer(digest, len(_DATA)) as w:
            w.write(_DATA)
            with pytest.raises(IntegrityError):
                w.commit()
        assert not store.exists(digest)
        with store.writer(digest) as w:
            assert w.offset == 0  # the bad data is gone: a new attempt starts from zero

    def test_oversize_write_is_rejected(self, store: ContentStore) -> None:
        digest = Digest.of(_DATA)
        with store.writer(digest, 10) as w, pytest.raises(IntegrityError):
            w.write(_DATA)

    def test_short_write_fails_commit(self, store: ContentStore) -> None:
        digest = Digest.of(_DATA)
        with store.writer(digest, len(_DATA)) as w:
            w.write(_DATA[:100])
            with pytest.raises(IntegrityError):
                w.commit()
        assert not store.exists(digest)

    def test_resume_from_partial(self, store: ContentStore) -> None:
        digest = Digest.of(_DATA)
        with store.writer(digest, len(_DATA)) as w:
            w.write(_DATA[:1000])
        with store.writer(digest, len(_DATA)) as w:
            assert not w.exists and w.offset == 1000 and w.resumed == 1000
            w.write(_DATA[w.offset :])
            assert w.commit().size == len(_DATA)
        assert store.read_bytes(digest) == _DATA

    def test_restart_discards_partial(self, store: ContentStore) -> None:
        digest = Digest.of(_DATA)
        with store.writer(digest, len(_DATA)) as w:
            w.write(b"garbage that is not a prefix")
        with store.writer(digest, len(_DATA)) as w:
            w.restart()
            assert w.offset == 0
            w.write(_DATA)
            w.commit()
        assert store.read_bytes(digest) == _DATA

    def test_existing_blob_counts_as_success(self, store: ContentStore) -> None:
        first = store.put_bytes(_DATA)
        with store.writer(first.digest, len(_DATA)) as w:
            assert w.exists
            assert w.commit().digest == first.digest
        assert store.put_bytes(_DATA).digest == first.digest

    def test_delete_and_walk(self, store: ContentStore) -> None:
        a, b = store.put_bytes(b"a"), store.put_bytes(b"b")
        assert set(store.walk()) == {a.digest, b.digest}
        assert store.delete(a.digest)
        assert not store.delete(a.digest)
        assert list(store.walk()) == [b.digest]

    def test_layer_diff_id_computed_while_writing(self, store: ContentStore) -> None:
        blob = gzip.compress(_DATA)
        digest = Digest.of(blob)
        with store.writer(digest, len(blob), media_type=mt.OCI_LAYER_GZIP) as w:
            w.write(blob[:5000])
        with store.writer(digest, len(blob), media_type=mt.OCI_LAYER_GZIP) as w:
            w.write(blob[w.offset :])
            info = w.commit()
        assert info.diff_id == Digest.of(_DATA) and info.uncompressed_size == len(_DATA)
        assert store.info(digest).diff_id == Digest.of(_DATA)

    def test_threads_share_one_ingest(self, store: ContentStore) -> None:
        digest = Digest.of(_DATA)
        results: list[bool] = []
        started = threading.Event()
        release = threading.Event()

        def first() -> None:
            with store.writer(digest, len(_DATA)) as w:
                w.write(_DATA[:10])
                started.set()
                release.wait()
                w.write(_DATA[10:])
                w.commit()
                results.append(w.exists)

        def second() -> None:
            with store.writer(digest, len(_DATA), on_wait=release.set) as w:
                results.append(w.exists)
                w.commit()

        t1 = threading.Thread(target=first)
        t1.start()
        started.wait()
        t2 = threading.Thread(target=second)
        t2.start()
        t1.join()
        t2.join()
        assert sorted(results) == [False, True]  # one wrote it, the other found it committed
        assert store.read_bytes(digest) == _DATA
