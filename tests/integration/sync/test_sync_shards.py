"""``--shard I/N``: three shards together copy exactly what one run copies, none twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from sync_helpers import head, read_report, seed, write_config

from lorry.cli import run

pytestmark = pytest.mark.integration


def test_three_shards_copy_the_set_one_run_copies(registry_factory, tmp_path: Path) -> None:
    src = registry_factory()
    seeded = seed(src, tmp_path, [f"s/r{i}" for i in range(4)], ["1", "2", "3"])
    whole, sharded = registry_factory(), registry_factory()

    def config(dest: str) -> Path:
        return write_config(
            tmp_path / f"{dest.replace(':', '_')}.yaml",
            f"sources: [{{source: 'docker://{src.host}', repositories: {{allow: ['^s/']}}}}]\n"
            f"destinations: ['docker://{dest}']\n",
        )

    def copied(report: Path) -> list[tuple[str, str]]:
        entries = read_report(report)
        return [(str(e["source"]), str(e["destination_digest"])) for e in entries]

    assert run(["sync", str(config(whole.host)), "-q", "--report", str(tmp_path / "all.json")]) == 0
    parts: list[list[tuple[str, str]]] = []
    for i in range(3):
        report = tmp_path / f"shard{i}.json"
        assert (
            run(
                [
                    "sync",
                    str(config(sharded.host)),
                    "-q",
                    "--shard",
                    f"{i}/3",
                    "--report",
                    str(report),
                ]
            )
            == 0
        )
        assert {e["action"] for e in read_report(report)} <= {"copied"}
        parts.append(copied(report))
    together = [pair for part in parts for pair in part]
    assert len(together) == len(set(together)) == len(seeded.images)  # none twice
    assert sorted(together) == sorted(copied(tmp_path / "all.json"))
    # the work is split: the keys hash the source's port, so one empty shard of three can
    # happen (p ≈ 2 %), all twelve images in one shard cannot (p ≈ 2e-6)
    assert sum(1 for part in parts if part) >= 2
    for (repo, tag), built in seeded.images.items():
        assert head(sharded.host, repo, tag) == head(whole.host, repo, tag) == built.top_digest
