"""The sync file: one schema in TOML and YAML; all mistakes reported at once (file, line, key)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorry.cli import run
from lorry.ops.sync import SyncConfigError, load_config, load_config_text, one_off

YAML = """\
registries:
  src.example:
    requests_per_second: 5
    burst: 10
jobs: 4
sources:
  - source: docker://src.example/team/app
    tags:
      allow: ['^v?\\d+']
      deny: ['-rc']
      semver: '>=1.2 <2'
      latest: 3
    platforms: [linux/amd64, linux/arm64]
  - source: docker://src.example/tools/cli
    tags: [1.10, "2.0"]
    referrers: false
  - source: docker://src.example
    repositories: {allow: ['^base/']}
destinations:
  - docker://mirror.example:5000/cache
"""

TOML = """\
jobs = 4
destinations = ["docker://mirror.example:5000/cache"]

[registries."src.example"]
requests_per_second = 5
burst = 10

[[sources]]
source = "docker://src.example/team/app"
platforms = ["linux/amd64", "linux/arm64"]
[sources.tags]
allow = ['^v?\\d+']
deny = ['-rc']
semver = ">=1.2 <2"
latest = 3

[[sources]]
source = "docker://src.example/tools/cli"
tags = ["1.10", "2.0"]
referrers = false

[[sources]]
source = "docker://src.example"
repositories = { allow = ['^base/'] }
"""


def test_toml_and_yaml_say_the_same(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(YAML)
    (tmp_path / "s.toml").write_text(TOML)
    a, b = load_config(tmp_path / "s.yaml"), load_config(tmp_path / "s.toml")
    assert a.sources == b.sources and a.registries == b.registries and a.jobs == b.jobs == 4
    app, cli, catalog = a.sources
    assert (app.registry, app.repository) == ("src.example", "team/app")
    assert app.tags.apply(["v1.1", "v1.2", "1.3", "1.4-rc", "1.5", "v1.9", "2.0", "latest"]) == [
        "v1.9",
        "1.5",
        "1.3",
    ]
    assert [str(p) for p in app.platforms or ()] == ["linux/amd64", "linux/arm64"]
    assert cli.tags.names == ("1.10", "2.0")  # YAML's 1.10 stays the tag it was written as
    assert not cli.referrers and app.referrers
    assert catalog.repository is None and catalog.repositories.keeps("base/alpine")
    assert not catalog.repositories.keeps("team/app")
    assert a.registries["src.example"].requests_per_second == 5.0


def test_every_mistake_is_reported_at_once_with_line_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources:\n"
        "  - source: docker://r.example/app\n"
        "    tags:\n"
        "      allow: ['(']\n"
        "      semver: '>=banana'\n"
        "    colour: blue\n"
        "  - source: https://r.example/x\n"
        "destinations: [docker://mirror.example/UPPER]\n"
        "jobs: 0\n"
        "jobs: 2\n"
    )
    with pytest.raises(SyncConfigError) as err:
        load_config(bad)
    problems = err.value.problems
    f = str(bad)
    assert any(p.startswith(f"{f}:10: jobs: written twice") for p in problems)
    assert any(p.startswith(f"{f}:4: sources[0].tags.allow[0]: bad regex '('") for p in problems)
    assert any(p.startswith(f"{f}:5: sources[0].tags.semver: semver range") for p in problems)
    assert any(p.startswith(f"{f}:6: sources[0].colour: unknown key") for p in problems)
    assert any(p.startswith(f"{f}:7: sources[1].source: 'https://") for p in problems)
    assert any("destinations[0]" in p and "UPPER" in p for p in problems)
    assert len(problems) == 6


def test_toml_problems_name_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[sources]]\nsource = "docker://r.example/app"\nlatest = "x"\n')
    with pytest.raises(SyncConfigError) as err:
        load_config(bad)
    assert err.value.problems == (
        f"{bad}: sources[0].latest: unknown key (known: source, tags, repositories, platforms, "
        "referrers, destinations)",
        f"{bad}: sources[0].destinations: no destination: list one here or at the top",
    )
    bad.write_text("jobs = 1\njobs = 2\n")
    with pytest.raises(SyncConfigError, match=r"bad.toml: not valid TOML: .*line 2"):
        load_config(bad)


def test_cli_prints_each_problem_on_its_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources:\n  - source: docker://r.example/app:1@sha256:00\njobs: x\n")
    assert run(["sync", str(bad)]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and all(line.startswith(f"lorry: error: {bad}:") for line in lines)


def test_one_off_from_flags() -> None:
    cfg = one_off(["docker://r.example/team/app"], ["docker://m.example/pre"], tags=["1.0"])
    (src,) = cfg.sources
    assert src.tags.names == ("1.0",) and src.platforms is None and src.referrers
    assert src.destinations[0].prefix == "pre"
    with pytest.raises(SyncConfigError, match="names a tag already"):
        one_off(["docker://r.example/app:1"], ["docker://m.example"], tags=["2"])


def test_an_oci_destination_under_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    text = f"sources: [{{source: docker://r.example/a}}]\ndestinations: ['oci:{tmp_path}/file/x']\n"
    with pytest.raises(SyncConfigError, match="file is not a directory"):
        load_config_text(text, "t.yaml", yaml_syntax=True, base=tmp_path)
