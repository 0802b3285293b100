"""Acceptance: a source answering 429 + Retry-After to one request in five.

The sync completes, every destination digest equals its source's, and no request reaches the
rate-limited host while a Retry-After it sent is still running (requests already on the wire
when the 429 left are allowed a short grace).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_helpers import head, seed, write_config

from lorry.cli import run
from lorry.testing.faultproxy import Every, Fault, FaultProxy, Status

pytestmark = pytest.mark.integration

RETRY_AFTER = 1.0
IN_FLIGHT_GRACE = 0.25  # a request sent before the client read the 429 may still arrive


def test_sync_honours_retry_after_on_a_fifth_of_requests(registry_factory, tmp_path: Path) -> None:
    src = registry_factory()
    seeded = seed(src, tmp_path, ["rl/a", "rl/b", "rl/c"], ["1", "2"])
    dest = registry_factory()
    limited = Every(5, Status(429, {"Retry-After": f"{RETRY_AFTER:g}"}, b"slow down\n"))
    with FaultProxy(src.url) as proxy:
        proxy.add(Fault(method="*", path=".*", times=-1, action=limited))
        cfg = write_config(
            tmp_path / "s.yaml",
            "sources:\n"
            + "".join(f"  - source: docker://{proxy.host}/{r}\n" for r in ("rl/a", "rl/b", "rl/c"))
            + f"destinations: [docker://{dest.host}]\n",
        )
        assert run(["sync", str(cfg), "-q"]) == 0
    for (repo, tag), built in seeded.images.items():
        assert head(dest.host, repo, tag) == built.top_digest
    hits = [t for t, _, _, acted in limited.seen if acted]
    assert len(hits) >= 4
    early = [
        (round(t - hit, 3), method, path)
        for hit in hits
        for t, method, path, _ in limited.seen
        if hit + IN_FLIGHT_GRACE < t < hit + RETRY_AFTER
    ]
    assert not early, f"requests sent while Retry-After ran: {early}"
