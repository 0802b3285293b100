"""Pure logic of the fault proxy: rule matching, the rule script, records, stalls.

The proxy's HTTP behaviour is tested against the real registry in
tests/integration/test_faultproxy_registry.py.
"""

from __future__ import annotations

import threading
from email.message import Message

import pytest

from lorry.errors import InvalidInputError
from lorry.testing.faultproxy import (
    DropAfter,
    Fault,
    FaultProxy,
    RedirectHost,
    RequestRecord,
    Stall,
    Status,
    _record_headers,
)


def test_fault_matches_method_and_path_regex() -> None:
    rule = Fault(path=r"/blobs/sha256:[0-9a-f]+$", action=DropAfter(1))
    assert rule.matches("GET", "/v2/a/b/blobs/sha256:abc")
    assert rule.matches("get", "/v2/a/b/blobs/sha256:abc")
    assert not rule.matches("HEAD", "/v2/a/b/blobs/sha256:abc")
    assert not rule.matches("GET", "/v2/a/b/blobs/sha256:abc/x")
    assert Fault(method="*", path="/v2/", action=DropAfter(1)).matches("PATCH", "/v2/x")


def test_fault_times_counts_hits() -> None:
    rule = Fault(path="/", times=2, action=Status(503))
    assert rule.matches("GET", "/")
    rule.hits = 2
    assert not rule.matches("GET", "/")
    always = Fault(path="/", times=-1, action=Status(503))
    always.hits = 10_000
    assert always.matches("GET", "/")


def test_rules_tried_in_order_until_used_up() -> None:
    proxy = FaultProxy("http://127.0.0.1:1")  # never started: only the script is exercised
    first = proxy.add(Fault(path="/blobs/", times=1, action=Status(500)))
    second = proxy.add(Fault(method="*", path="/", times=2, action=Status(502)))
    taken = [proxy._take("GET", "/v2/r/blobs/d") for _ in range(4)]
    assert taken == [first, second, second, None]
    assert (first.hits, second.hits) == (1, 2)
    assert proxy._take("HEAD", "/v2/") is None
    proxy.clear()
    assert proxy._take("GET", "/v2/r/blobs/d") is None


def test_clear_releases_stalls() -> None:
    proxy = FaultProxy("http://127.0.0.1:1")
    stall = Stall(after_bytes=0, seconds=3600)
    proxy.add(Fault(path="/", action=stall))
    proxy.clear()
    assert stall.released.is_set()


def test_stall_wait_signals_start_and_returns_once_released() -> None:
    stall = Stall(after_bytes=10, seconds=3600)
    done = threading.Event()

    def run() -> None:
        stall.wait()
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    assert stall.started.wait(30)
    assert not done.is_set()
    stall.release()
    worker.join(30)
    assert done.is_set()


def test_record_hides_authorization() -> None:
    msg = Message()
    msg["Authorization"] = "Bearer secret-token"
    msg["Accept"] = "application/json"
    headers = _record_headers(msg)
    assert headers == {"Authorization": "<redacted>", "Accept": "application/json"}
    record = RequestRecord("GET", "/v2/", "", headers, 200)
    assert record.has_authorization
    assert "secret-token" not in repr(record)
    assert not RequestRecord("GET", "/v2/", "", {"Accept": "x"}, 200).has_authorization


@pytest.mark.parametrize("url", ["https://127.0.0.1:5000", "ftp://x", "127.0.0.1:5000", "http://"])
def test_upstream_must_be_http_url(url: str) -> None:
    with pytest.raises(InvalidInputError):
        FaultProxy(url)
    with pytest.raises(InvalidInputError):
        RedirectHost(url)


def test_url_before_start_is_an_error() -> None:
    proxy = FaultProxy("http://127.0.0.1:5000/")
    assert proxy.upstream_url == "http://127.0.0.1:5000"
    with pytest.raises(InvalidInputError, match="not started"):
        _ = proxy.url
    proxy.stop()  # stopping a proxy that never started is harmless
