"""Hostile documents cost their own bytes, nothing more (issue 16, item 5 and JSON depth).

Served by a :class:`~lorry.testing.hostile.HostileRegistry` that counts every blob GET: a
10,000-layer manifest is refused right after parsing (no blob fetched, < 100 MB RSS as GNU time
measures lorry itself; about 1 s here, where the unbounded pull took 62 s: the time bound
catches that, not speed),
as is an index of 10,000 entries (no child manifest fetched), and JSON nested 100,000 deep —
as the manifest or as the config — is one error line.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_helpers import lorry, lorry_child

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.ops.resolve import MAX_INDEX_ENTRIES
from lorry.testing.hostile import (
    Document,
    image_with_config,
    layered_image,
    nested_json,
    wide_index,
)
from lorry.testing.pytest_plugin import HostileFactory

pytestmark = pytest.mark.integration

INVALID, UNSUPPORTED = 2, 7


@pytest.mark.parametrize(("command", "limit"), [("pull", 125), ("copy", 1000)])
def test_ten_thousand_layers_fail_fast_small_and_fetch_no_blob(
    hostile_registry: HostileFactory, tmp_path: Path, command: str, limit: int
) -> None:
    reg = hostile_registry()
    image = layered_image(10_000)
    reg.add_image("app", "huge", image)
    ref = f"{reg.host}/app:huge"
    argv = (
        ["pull", ref] if command == "pull" else ["copy", f"docker://{ref}", f"oci:{tmp_path}/o:t"]
    )
    got = lorry_child(argv, tmp_path / "store", timeout=60)
    assert got.code == UNSUPPORTED, got.err
    line = got.one_error()
    assert "10000 layers" in line and f"the {limit} " in line, line
    assert got.seconds < 20, got.seconds
    assert got.rss_mb < 100, got.rss_mb
    assert reg.blob_gets() == 0
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["pull", "{ref}"],
        ["pull", "--all-platforms", "{ref}"],
        ["copy", "--all", "docker://{ref}", "oci:{tmp}/o:t"],
    ],
)
def test_an_index_of_ten_thousand_entries_is_refused_before_any_child_is_fetched(
    hostile_registry: HostileFactory,
    root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    reg = hostile_registry()
    child = layered_image(1)
    reg.add_image("app", "one", child)
    reg.add_manifest("app", wide_index(child.manifest, 10_000), "wide")
    ref = f"{reg.host}/app:wide"
    got = lorry([a.format(ref=ref, tmp=tmp_path) for a in argv], root, capsys)
    assert got.code == UNSUPPORTED, got.err
    line = got.one_error()
    assert f"10000 entries, more than the {MAX_INDEX_ENTRIES}" in line, line
    fetched = [r.path for r in reg.requests if r.kind in ("manifest", "blob")]
    assert fetched == ["/v2/app/manifests/wide"]  # the index itself, nothing it lists


def test_an_index_at_the_limit_is_followed(
    hostile_registry: HostileFactory,
    root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The limit is a bound, not a ban: MAX_INDEX_ENTRIES entries are copied with --all."""
    reg = hostile_registry()
    child = layered_image(1)
    reg.add_image("app", "one", child)
    reg.add_manifest("app", wide_index(child.manifest, MAX_INDEX_ENTRIES), "wide")
    got = lorry(
        ["copy", "--all", f"docker://{reg.host}/app:wide", f"oci:{tmp_path}/o:t"], root, capsys
    )
    assert got.code == 0, got.err


@pytest.mark.parametrize("command", ["pull", "copy"])
def test_a_manifest_nested_100000_deep_is_one_error_line(
    hostile_registry: HostileFactory,
    root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    reg = hostile_registry()
    reg.add_manifest("app", Document(nested_json(100_000), mt.OCI_MANIFEST), "deep")
    ref = f"{reg.host}/app:deep"
    argv = (
        ["pull", ref] if command == "pull" else ["copy", f"docker://{ref}", f"oci:{tmp_path}/o:t"]
    )
    got = lorry(argv, root, capsys)
    assert got.code == INVALID, got.err
    assert "fetching manifest deep" in got.one_error()
    assert reg.blob_gets() == 0


def test_a_config_nested_100000_deep_is_one_error_line(
    hostile_registry: HostileFactory, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = hostile_registry()
    image = image_with_config(b'{"config":' + nested_json(100_000) + b"}")
    reg.add_image("app", "deepconfig", image)
    got = lorry(["pull", f"{reg.host}/app:deepconfig"], root, capsys)
    assert got.code == INVALID, got.err
    assert "nested too deeply" in got.one_error()
    assert reg.blob_gets(Digest.of(image.config)) >= 1
    assert reg.blob_gets(Digest.of(image.layers[0])) == 0
