"""``lorry sync`` against real registries: full sync, no-op cost, dry run, keep going, layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sync_helpers import Seeded, head, read_report, seed, write_config

from lorry.cli import run
from lorry.testing.builder import build_image
from lorry.testing.faultproxy import FaultProxy
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout

pytestmark = pytest.mark.integration

REPOS = ["base/one", "base/two", "apps/three"]
TAGS = ["1.0", "1.1"]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[RegistryServer, Seeded]:
    from lorry.testing.registry import start_registry

    work = tmp_path_factory.mktemp("sync-src")
    server = start_registry(work / "registry")
    try:
        yield server, seed(server, work, REPOS, TAGS)  # type: ignore[misc]
    finally:
        server.stop()


def test_full_sync_fetches_each_blob_once_and_the_no_op_costs_two_requests_per_tag(
    source: tuple[RegistryServer, Seeded],
    registry_factory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, seeded = source
    dest = registry_factory()
    with FaultProxy(server.url) as src, FaultProxy(dest.url) as dst:
        cfg = write_config(
            tmp_path / "s.yaml",
            f"sources:\n  - source: docker://{src.host}\n"
            f"    repositories: {{allow: ['^(base|apps)/']}}\n"
            f"destinations: [docker://{dst.host}/mirror]\n",
        )
        assert run(["sync", str(cfg), "--report", str(tmp_path / "r.json"), "-q"]) == 0
        assert "6 copied, 0 unchanged" in capsys.readouterr().out
        entries = read_report(tmp_path / "r.json")
        assert {e["action"] for e in entries} == {"copied"} and len(entries) == 6
        for (repo, tag), built in seeded.images.items():
            assert head(dest.host, f"mirror/{repo}", tag) == built.top_digest
        # every distinct blob left the source once, though six images share the base layer
        assert src.blob_bytes_sent == sum(seeded.blob_sizes().values())
        seen_src, seen_dst = len(src.requests), len(dst.requests)

        assert run(["sync", str(cfg), "--report", str(tmp_path / "r2.json"), "-q"]) == 0
        records = src.requests[seen_src:] + dst.requests[seen_dst:]
        heads = [r for r in records if r.method == "HEAD" and "/manifests/" in r.path]
        others = [r for r in records if r not in heads]
        assert len(heads) == 2 * len(seeded.images)
        probes = [r for r in others if "/referrers/" in r.path]
        assert len(probes) == 1 and probes[0].status == 404  # no referrers API: asked once
        others = [r for r in others if r not in probes]
        assert all(r.path.endswith("/tags/list") or r.path == "/v2/_catalog" for r in others)
        assert len(others) == len(REPOS) + 1  # one tag list per repository, one catalog page
        assert {e["action"] for e in read_report(tmp_path / "r2.json")} == {"unchanged"}


def test_dry_run_fetches_only_manifests_and_writes_nothing(
    source: tuple[RegistryServer, Seeded], registry_factory, tmp_path: Path
) -> None:
    server, seeded = source
    dest = registry_factory()
    with FaultProxy(server.url) as src:
        cfg = write_config(
            tmp_path / "s.toml",
            f'destinations = ["docker://{dest.host}"]\n'
            f'[[sources]]\nsource = "docker://{src.host}/base/one"\ntags = ["1.1"]\n',
        )
        assert run(["sync", str(cfg), "--dry-run", "--report", str(tmp_path / "r.json")]) == 0
        assert src.blob_bytes_sent == 0
        assert all("/blobs/" not in r.path for r in src.requests)
    (entry,) = read_report(tmp_path / "r.json")
    assert entry["action"] == "would-copy"
    assert entry["source_digest"] == str(seeded.images[("base/one", "1.1")].top_digest)
    assert head(dest.host, "base/one", "1.1") is None


def test_keep_going_reports_the_missing_repository_and_copies_the_rest(
    source: tuple[RegistryServer, Seeded],
    registry_factory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, seeded = source
    dest = registry_factory()
    args = [
        "sync",
        "--src",
        f"docker://{server.host}/no/such",
        "--src",
        f"docker://{server.host}/apps/three:1.0",
        "--dest",
        f"docker://{dest.host}/m",
        "--keep-going",
        "--report",
        str(tmp_path / "r.json"),
        "--digests",
        str(tmp_path / "pins.txt"),
    ]
    assert run(args) == 3  # not found: the kind of the failure
    err = capsys.readouterr().err
    assert "1 image failed; the first: listing tags of" in err
    by_action = {e["action"]: e for e in read_report(tmp_path / "r.json")}
    assert set(by_action) == {"failed", "copied"}
    assert "no/such" in str(by_action["failed"]["error"])
    want = seeded.images[("apps/three", "1.0")].top_digest
    assert by_action["copied"]["destination_digest"] == str(want)
    assert (tmp_path / "pins.txt").read_text() == f"{dest.host}/m/apps/three@{want}\n"
    # without --keep-going the failure ends the run, the report still written
    args.remove("--keep-going")
    assert run(args) == 3


def test_a_platform_subset_into_an_oci_layout_is_a_no_op_the_second_time(
    registry: RegistryServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build_image(
        tmp_path / "img", layers=1, seed=5, platforms=["linux/amd64", "linux/arm64"]
    )
    push_layout(built, registry, "sync/multi", "2.0")
    arm = built.children[1]
    layout = tmp_path / "layout"
    args = ["sync", "--src", f"docker://{registry.host}/sync/multi", "--dest", f"oci:{layout}"]
    args += ["--platform", "linux/arm64", "-q"]
    assert run(args) == 0
    assert "1 copied" in capsys.readouterr().out
    index = json.loads((layout / "index.json").read_text())
    (entry,) = index["manifests"]
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "sync/multi:2.0"
    assert entry["digest"] == str(arm.manifest_digest)
    assert run(args) == 0
    assert "0 copied, 1 unchanged" in capsys.readouterr().out
