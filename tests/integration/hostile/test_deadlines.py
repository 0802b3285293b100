"""Every response has a deadline (issue 16, item 4): drips and silent servers end in one error.

A manifest or token reply sent at 1 byte/s used to hang a pull for ever (each read got its byte
within the idle timeout); a response head that never came cost four idle timeouts. In-process
runs use deadlines a thirtieth of the default (the ``short_deadlines`` fixture); one test runs
the real defaults in child processes and holds them to the 90 s a user would wait.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hostile_helpers import Outcome, lorry, lorry_child

from lorry.registry.deadlines import DEFAULT_DEADLINES, Deadlines
from lorry.testing.hostile import Behaviour, Drip, HostileRegistry, Silence, layered_image
from lorry.testing.pytest_plugin import HostileFactory

pytestmark = pytest.mark.integration

UNAVAILABLE = 6
#: What a run may take beyond its deadlines: start-up, the store, a loaded CI machine.
SLACK = 5.0


def _serving(reg: HostileRegistry) -> str:
    reg.add_image("app", "v1", layered_image(1))
    return f"{reg.host}/app:v1"


@pytest.mark.parametrize("command", ["pull", "copy"])
def test_a_manifest_dripped_at_one_byte_a_second_fails_within_the_body_deadline(
    hostile_registry: HostileFactory,
    short_deadlines: Deadlines,
    root: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    reg = hostile_registry(behaviours=[Behaviour("manifest", pace=Drip(1.0), method="GET")])
    ref = _serving(reg)
    argv = ["pull", ref] if command == "pull" else ["copy", f"docker://{ref}", f"oci:{root}/o:t"]
    got = lorry(argv, root, capsys)
    assert got.code == UNAVAILABLE
    line = got.one_error()
    assert "fetching manifest v1" in line and "too slow" in line, line
    assert got.seconds < (short_deadlines.body or 0) + SLACK
    assert reg.blob_gets() == 0


def test_a_token_dripped_at_one_byte_a_second_fails_within_the_body_deadline(
    hostile_registry: HostileFactory,
    short_deadlines: Deadlines,
    root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    reg = hostile_registry(token_auth=True, behaviours=[Behaviour("token", pace=Drip(1.0))])
    got = lorry(["pull", _serving(reg)], root, capsys)
    assert got.code == UNAVAILABLE
    line = got.one_error()
    assert "authenticating to" in line and "too slow" in line, line
    assert got.seconds < (short_deadlines.body or 0) + SLACK


def test_a_response_head_that_never_comes_is_bounded_even_with_retries(
    hostile_registry: HostileFactory,
    short_deadlines: Deadlines,
    root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two attempts (a stalled server is tried once more, not max_attempts times), each cut
    at the head deadline: with the 30 s default a head that never comes fails in ~61 s."""
    reg = hostile_registry(behaviours=[Behaviour("manifest", pace=Silence())])
    got = lorry(["pull", _serving(reg)], root, capsys)
    assert got.code == UNAVAILABLE
    line = got.one_error()
    assert "no response from the server within 1s" in line, line
    attempts = [r for r in reg.requests if r.kind == "manifest"]
    assert len(attempts) == 2
    assert got.seconds < 2 * (short_deadlines.head or 0) + 0.5 + SLACK  # + one backoff


def test_a_head_trickled_a_byte_at_a_time_is_bounded_too(
    hostile_registry: HostileFactory,
    short_deadlines: Deadlines,
    root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every read of the head gets its byte in time; the head as a whole does not."""
    reg = hostile_registry(
        token_auth=True, behaviours=[Behaviour("token", pace=Drip(20.0, head=True))]
    )
    got = lorry(["pull", _serving(reg)], root, capsys)
    assert got.code == UNAVAILABLE
    assert "no response from the server within 1s" in got.one_error()
    assert got.seconds < (short_deadlines.head or 0) + SLACK


def test_a_slow_but_steady_body_is_not_cut(
    hostile_registry: HostileFactory,
    short_deadlines: Deadlines,
    root: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The minimum-rate rule: a body that keeps up 8 KiB/s may run past the body deadline
    (a ~46 KB manifest at 20 KiB/s takes over 2 s against a 1 s deadline, and arrives)."""
    image = layered_image(300)
    reg = hostile_registry()
    reg.add_image("app", "big", image)
    reg.behave(Behaviour("manifest", pace=Drip(20 * 1024.0), method="GET"))
    got = lorry(["manifest", f"{reg.host}/app:big"], root, capsys)
    assert got.code == 0, got.err
    assert got.out == image.manifest.raw.decode()
    assert got.seconds > 2 * (short_deadlines.body or 0)


@pytest.mark.slow
def test_the_default_deadlines_end_a_dripped_manifest_and_token_within_90_seconds(
    hostile_registry: HostileFactory, tmp_path: Path
) -> None:
    """The real defaults, in child processes (in parallel: one wait of ~30 s for both)."""
    assert DEFAULT_DEADLINES.body is not None and DEFAULT_DEADLINES.body + SLACK < 90
    manifest = hostile_registry(behaviours=[Behaviour("manifest", pace=Drip(1.0))])
    token = hostile_registry(token_auth=True, behaviours=[Behaviour("token", pace=Drip(1.0))])
    runs = [
        (["pull", _serving(manifest)], tmp_path / "a"),
        (["copy", f"docker://{_serving(token)}", f"oci:{tmp_path}/o:t"], tmp_path / "b"),
    ]
    with ThreadPoolExecutor(len(runs)) as pool:
        got: list[Outcome] = list(pool.map(lambda r: lorry_child(*r, timeout=120), runs))
    for outcome in got:
        assert outcome.code == UNAVAILABLE, outcome.err
        assert "too slow" in outcome.one_error()
        assert outcome.seconds < 90
