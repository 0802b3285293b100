"""Acceptance: what ``lorry pull`` stored, ``lorry push`` sends back byte for byte (CLI too)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from push_helpers import anonymous, layer_statuses

from lorry.cli.app import run
from lorry.oci import Index
from lorry.ops.pull import PullOptions, pull_sync
from lorry.store import Store
from lorry.testing.skopeo import push_layout, skopeo_copy, skopeo_inspect_raw

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("media_types", ["docker", "oci"])
def test_pull_then_cli_push_is_byte_identical(
    registry, image_builder, tmp_path: Path, capsys, media_types: str
) -> None:
    built = image_builder(layers=3, seed=721, media_types=media_types)
    src = push_layout(built, registry, f"pushpull/src-{media_types}", "v1").removeprefix(
        "docker://"
    )
    root = tmp_path / "store"
    with Store.open(root) as store:
        pulled = pull_sync(src, store=store, session_options=anonymous())
        pulled_raw = store.content.read_bytes(pulled.manifest_digest)
    dst = f"{registry.host}/pushpull/dst-{media_types}:v2"
    capsys.readouterr()
    code = run(["--root", str(root), "push", src, dst, "--progress", "json"])
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0] == {"status": f"The push refers to repository [{dst.removesuffix(':v2')}]"}
    pushed = [
        m["id"] for m in lines if m.get("status") == "Mounted from pushpull/src-" + media_types
    ]
    assert sorted(pushed) == sorted(d.short for d in built.diff_ids)
    size = len(pulled_raw)
    assert lines[-2] == {"status": f"v2: digest: {pulled.manifest_digest} size: {size}"}
    assert lines[-1]["aux"] == {"Tag": "v2", "Digest": str(pulled.manifest_digest), "Size": size}
    assert skopeo_inspect_raw(f"docker://{dst}") == pulled_raw == built.manifest_bytes
    skopeo_copy(f"docker://{dst}", f"oci:{tmp_path / 'layout'}:v2")
    assert (tmp_path / "layout" / "index.json").is_file()


def test_cli_push_quiet_prints_the_pushed_reference(
    registry, image_builder, tmp_path: Path, capsys
) -> None:
    built = image_builder(layers=1, seed=722)
    src = push_layout(built, registry, "pushpull/quiet", "v1").removeprefix("docker://")
    root = tmp_path / "store"
    with Store.open(root) as store:
        pull_sync(src, store=store, session_options=anonymous())
    capsys.readouterr()
    assert run(["--root", str(root), "push", "-q", "--monolithic", src]) == 0
    out = capsys.readouterr()
    assert out.out == f"{src}@{built.manifest_digest}\n"
    assert out.err == ""
    by_digest = f"{src.removesuffix(':v1')}@{built.manifest_digest}"
    assert run(["--root", str(root), "push", "-q", by_digest, src]) == 0  # SRC may be a digest
    assert capsys.readouterr().out == f"{src}@{built.manifest_digest}\n"
    assert run(["--root", str(root), "push", src, f"{src}@{built.manifest_digest}"]) == 2
    assert "cannot push a digest reference" in capsys.readouterr().err


def test_two_platform_index_round_trips(registry, image_builder, store: Store, do_push) -> None:
    built = image_builder(layers=2, seed=723, platforms=["linux/amd64", "linux/arm64"])
    assert built.index_bytes is not None
    src = push_layout(built, registry, "pushpull/multi", "v1").removeprefix("docker://")
    pulled = pull_sync(
        src, PullOptions(all_platforms=True), store=store, session_options=anonymous()
    )
    assert pulled.manifest_digest == built.index_digest
    dst = f"{registry.host}/pushpull/multi-copy:v1"
    result, sink = do_push(src, dst)
    assert result.manifest_digest == built.index_digest
    assert result.size == len(built.index_bytes)
    assert skopeo_inspect_raw(f"docker://{dst}") == built.index_bytes
    for child in Index.parse(built.index_bytes).manifests:
        child_ref = f"docker://{registry.host}/pushpull/multi-copy@{child.digest}"
        assert skopeo_inspect_raw(child_ref) == store.content.read_bytes(child.digest)
    all_layers = {d.short for c in built.children for d in c.diff_ids}
    assert layer_statuses(sink) == dict.fromkeys(all_layers, "Mounted from pushpull/multi")
