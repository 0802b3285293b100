"""``lorry images`` keeps docker's listing habits, checked against a real dockerd.

The same image is in lorry's store and, through ``lorry save`` and ``docker load``, in a private
dockerd: the table, ``-q``, the JSON rows and ``--format`` templates come out the same, cell for
cell, but for two values: Digest (a loaded image has none in docker, a pulled one has in lorry)
and Size (docker sums the file contents it unpacked; lorry the layers' uncompressed tar bytes,
headers included — docs/store.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.store import Store
from lorry.testing.builder import BuiltImage, build_image
from lorry.testing.dockerd import DockerDaemon
from lorry.testing.store_fill import fill_store

pytestmark = pytest.mark.integration

REPO = "lorry-listing"


@pytest.fixture(scope="module")
def both(
    dockerd: DockerDaemon, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, BuiltImage]:
    work = tmp_path_factory.mktemp("listing")
    root = work / "store"
    built = build_image(work / "layout", layers=2, seed=2121)
    other = build_image(work / "other", layers=1, seed=2122)
    with Store.open(root) as store:
        fill_store(store, built.layout, f"{REPO}:v1")
        fill_store(store, built.layout, f"{REPO}:v2")
        fill_store(store, other.layout, f"{REPO}-other:latest")
    archive = work / "images.tar"
    assert run(["--root", str(root), "save", "-o", str(archive), f"{REPO}:v1", f"{REPO}:v2"]) == 0
    dockerd.docker(["load", "-i", str(archive)])
    return root, built


def _but_last(table: str) -> list[str]:
    return [line.rsplit("   ", 1)[0] for line in table.splitlines()]


def _lorry(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert run(["--root", str(root), "images", *args]) == 0
    return capsys.readouterr().out


def test_table_quiet_and_template_equal_dockers(
    both: tuple[Path, BuiltImage], dockerd: DockerDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    root, built = both
    for args in (
        [REPO],
        ["-q", REPO],
        ["--no-trunc", "-q", REPO],
        ["--format", "table {{.ID}}\\t{{.Repository}}:{{.Tag}}", REPO],
        ["--format", "{{.Repository}} {{.Tag}} {{.CreatedAt}} {{.Containers}}", REPO],
    ):
        ours = _lorry(root, capsys, *args)
        theirs = dockerd.docker(["images", *args]).decode()
        if args == [REPO]:  # all but the SIZE column, whose values differ by definition
            assert _but_last(ours) == _but_last(theirs), (ours, theirs)
            continue
        if "-q" in args:  # docker 20.10 repeats an ID once per tag; lorry lists each once
            theirs = "".join(f"{i}\n" for i in dict.fromkeys(theirs.splitlines()))
        assert ours == theirs, (args, ours, theirs)
    assert _lorry(root, capsys, "-q", REPO).strip() == built.config_digest.hex[:12]


def test_json_rows_have_dockers_fields_and_values(
    both: tuple[Path, BuiltImage], dockerd: DockerDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    root, _ = both
    ours = [
        json.loads(line) for line in _lorry(root, capsys, "--format", "json", REPO).splitlines()
    ]
    theirs = [
        json.loads(line)
        for line in dockerd.docker(["images", "--format", "{{json .}}", REPO]).decode().splitlines()
    ]
    assert [sorted(r) for r in ours] == [sorted(r) for r in theirs]
    for row in (*ours, *theirs):
        for field in ("Digest", "Size", "VirtualSize"):
            row.pop(field)
    assert sorted(ours, key=lambda r: r["Tag"]) == sorted(theirs, key=lambda r: r["Tag"])


def test_digests_filters_and_repo_tag_argument(
    both: tuple[Path, BuiltImage], capsys: pytest.CaptureFixture[str]
) -> None:
    root, built = both
    table = _lorry(root, capsys, "--digests", REPO).splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    assert all(str(built.manifest_digest) in line for line in table[1:]) and len(table) == 3
    assert _lorry(root, capsys, "--format", "{{.Tag}}", f"{REPO}:v2") == "v2\n"
    assert _lorry(root, capsys, "--format", "{{.Repository}}", "-f", "reference=*-other") == (
        f"{REPO}-other\n"
    )
    assert _lorry(root, capsys, "-q", "-f", "dangling=true") == ""
    assert (
        _lorry(root, capsys, "-q", "-f", "dangling=false", REPO).strip()
        == (built.config_digest.hex[:12])
    )
    assert _lorry(root, capsys, "-q", "-f", "label=nope") == ""


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-f", "colour=red"], "invalid filter 'colour'"),
        (["-f", "dangling"], "expected KEY=VALUE"),
        (["-f", "dangling=maybe"], "expected true or false"),
        (["--format", "{{.Nope}}"], "unknown field .Nope"),
        (["x@sha256:" + "a" * 64], "not a digest"),
    ],
)
def test_bad_listing_input_is_one_line(
    both: tuple[Path, BuiltImage], capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    root, _ = both
    assert run(["--root", str(root), "images", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and said in captured.err, captured


@pytest.mark.parametrize(
    "template",
    [
        "{{.Id}}",
        "{{.Os}}/{{.Architecture}}",
        "{{json .RootFS.Layers}}",
        "{{index .RepoTags 0}} {{len .RepoTags}}",
        "{{.Created}}",
        "{{json .Config.Env}}",
    ],
)
def test_inspect_format_equals_dockers(
    both: tuple[Path, BuiltImage],
    dockerd: DockerDaemon,
    capsys: pytest.CaptureFixture[str],
    template: str,
) -> None:
    root, _ = both
    assert run(["--root", str(root), "inspect", "-f", template, f"{REPO}:v1"]) == 0
    ours = capsys.readouterr().out
    assert ours == dockerd.docker(["image", "inspect", "-f", template, f"{REPO}:v1"]).decode()
