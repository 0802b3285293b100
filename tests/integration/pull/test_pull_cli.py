"""``lorry pull`` on the command line: stdout, and the three progress renderers on stderr."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pull_helpers import push

from lorry.cli import run
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer

pytestmark = pytest.mark.integration
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def lorry(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = run(["--root", str(root), *args])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def ref(registry: RegistryServer, image_builder: ImageBuilder) -> str:
    return push(image_builder(layers=2, seed=31), registry, "pull/cli")


def test_plain_progress_has_no_control_characters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    rc, out, err = lorry(tmp_path, capsys, "pull", "--progress", "plain", ref)
    assert rc == 0
    assert out == f"{ref}\n"
    assert not CONTROL.search(err)
    lines = err.splitlines()
    assert lines[0] == f"latest: Pulling from {ref.partition('/')[2].rpartition(':')[0]}"
    assert lines[-2].startswith("Digest: sha256:")
    assert lines[-1] == f"Status: Downloaded newer image for {ref}"
    assert any(line.endswith(": Pull complete") for line in lines)


def test_json_progress_is_the_docker_message_stream(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    rc, _, err = lorry(tmp_path, capsys, "pull", "--progress", "json", ref)
    assert rc == 0
    messages = [json.loads(line) for line in err.splitlines()]
    assert messages[0] == {"status": f"Pulling from {ref.partition('/')[2][:-7]}", "id": "latest"}
    layer = [m for m in messages if "progressDetail" in m]
    assert {m["status"] for m in layer} >= {
        "Pulling fs layer",
        "Downloading",
        "Verifying Checksum",
        "Download complete",
        "Extracting",
        "Pull complete",
    }
    assert all(re.fullmatch(r"[0-9a-f]{12}", m["id"]) for m in layer)
    downloading = [m for m in layer if m["status"] == "Downloading"]
    assert all(set(m["progressDetail"]) == {"current", "total"} for m in downloading)
    assert all(m["progress"].startswith("[") for m in downloading)
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {ref}"}
    rc, _, err = lorry(tmp_path, capsys, "pull", "--progress", "json", ref[:-6] + "nope")
    assert rc == 3
    last = json.loads(err.splitlines()[-1])
    assert last["error"] == last["errorDetail"]["message"]
    assert last["error"].startswith(f"manifest for {ref[:-6]}nope not found")


def test_tty_quiet_and_default_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    rc, out, err = lorry(tmp_path, capsys, "pull", "--progress", "tty", ref[: -len(":latest")])
    assert rc == 0 and out == f"{ref}\n"
    assert err.startswith("Using default tag: latest\n")
    assert "\x1b[" in err  # lines redrawn in place
    rc, out, err = lorry(tmp_path, capsys, "pull", "-q", ref)
    assert (rc, out, err) == (0, f"{ref}\n", "")


def test_errors_are_one_line_with_the_kind_as_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], registry: RegistryServer
) -> None:
    rc, _, err = lorry(tmp_path, capsys, "pull", "foo_bar.com/baz")
    assert rc == 2 and "no registry host" in err
    rc, _, err = lorry(tmp_path, capsys, "pull", "-q", f"{registry.host}/pull/none:v9")
    assert rc == 3
    assert err.splitlines() == [
        f"lorry: error: manifest for {registry.host}/pull/none:v9 not found: "
        + err.split(" not found: ", 1)[1].rstrip("\n")
    ]
