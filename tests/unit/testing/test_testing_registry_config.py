"""The registry fixture's config rendering, deep merge and htpasswd file."""

from __future__ import annotations

import json
from pathlib import Path

import bcrypt

from lorry.testing.registry import _merge, to_yaml, write_htpasswd


def test_to_yaml_renders_nested_blocks_with_json_scalars() -> None:
    text = to_yaml(
        {
            "version": "0.1",
            "http": {"addr": "127.0.0.1:5000", "headers": {"X-A": ["b", "c"]}},
            "storage": {"delete": {"enabled": True}, "cache": {}},
            "n": 3,
            "none": None,
        }
    )
    assert text == (
        'version: "0.1"\n'
        "http:\n"
        '  addr: "127.0.0.1:5000"\n'
        "  headers:\n"
        "    X-A:\n"
        '      - "b"\n'
        '      - "c"\n'
        "storage:\n"
        "  delete:\n"
        "    enabled: true\n"
        "  cache: {}\n"
        "n: 3\n"
        "none: null\n"
    )


def test_to_yaml_quotes_awkward_strings() -> None:
    line = to_yaml({"k": 'a: "b" # c\n'}).strip()
    assert json.loads(line.removeprefix("k: ")) == 'a: "b" # c\n'


def test_merge_is_deep_and_does_not_mutate() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    out = _merge(base, {"a": {"c": 20, "e": 5}, "d": {"x": 1}})
    assert out == {"a": {"b": 1, "c": 20, "e": 5}, "d": {"x": 1}}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}


def test_htpasswd_uses_bcrypt(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    write_htpasswd(path, {"alice": "s3cret", "bob": "pw"})
    lines = dict(line.split(":", 1) for line in path.read_text().splitlines())
    assert set(lines) == {"alice", "bob"}
    assert lines["alice"].startswith("$2b$04$")
    assert bcrypt.checkpw(b"s3cret", lines["alice"].encode())
    assert not bcrypt.checkpw(b"wrong", lines["alice"].encode())
