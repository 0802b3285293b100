"""docs/sync.md and docs/examples/ hold sync files that load, and the YAML and TOML agree."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from lorry.ops.sync import load_config, load_config_text

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _block(text: str, lang: str) -> str:
    found = re.findall(rf"```{lang}\n(.*?)```", text, flags=re.DOTALL)
    assert found, f"no ```{lang} block in docs/sync.md"
    return str(found[0])


def test_the_yaml_and_toml_examples_of_sync_md_are_one_config(tmp_path: Path) -> None:
    text = (DOCS / "sync.md").read_text(encoding="utf-8")
    for name in ("mirror-ca.pem", "mirror-auth.json"):  # the files the example names
        (tmp_path / name).write_text("{}")
    as_yaml = load_config_text(_block(text, "yaml"), "sync.md", yaml_syntax=True, base=tmp_path)
    as_toml = load_config_text(_block(text, "toml"), "sync.md", yaml_syntax=False, base=tmp_path)
    assert as_yaml.sources and as_yaml.registries
    assert as_yaml.sources == as_toml.sources
    assert as_yaml.registries == as_toml.registries
    assert (as_yaml.jobs, as_yaml.transfers) == (as_toml.jobs, as_toml.transfers)


def test_the_example_file_and_the_indexed_job_config_load() -> None:
    assert load_config(DOCS / "examples" / "sync.yaml").sources
    docs = list(yaml.safe_load_all((DOCS / "examples" / "sync-cronjob.yaml").read_text()))
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")
    assert load_config_text(
        config_map["data"]["sync.yaml"], "sync-cronjob.yaml", yaml_syntax=True, base=DOCS
    ).sources
    job = next(d for d in docs if d["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    container = job["template"]["spec"]["containers"][0]
    shards = next(e["value"] for e in container["env"] if e["name"] == "SHARDS")
    assert int(shards) == job["completions"]
    assert '--shard "${JOB_COMPLETION_INDEX}/${SHARDS}"' in container["args"][0]
