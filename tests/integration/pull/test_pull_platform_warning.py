"""A single-platform image that does not fit is pulled with docker's one warning line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorry.cli import run
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout

pytestmark = pytest.mark.integration


def test_pulling_an_arm64_only_image_warns_once(
    registry: RegistryServer,
    image_builder: ImageBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    built = image_builder(layers=1, seed=1707, platforms=["linux/arm64/v8"])
    index_ref = push_layout(built, registry, "warn/index", "v1").removeprefix("docker://")
    child = built.children[0]
    single = f"{registry.host}/warn/single:arm"
    assert (
        run(
            [
                "--root",
                str(tmp_path / "copy-store"),
                "copy",
                "-q",
                f"docker://{index_ref.rsplit(':', 1)[0]}@{child.manifest_digest}",
                f"docker://{single}",
            ]
        )
        == 0
    )
    root = str(tmp_path / "store")
    capsys.readouterr()

    assert run(["--root", root, "pull", "--progress", "plain", single]) == 0
    err = capsys.readouterr().err
    warned = [line for line in err.splitlines() if "WARNING" in line]
    assert warned == [
        "WARNING: The requested image's platform (linux/arm64/v8) does not match the detected "
        f"host platform ({_host()}) and no specific platform was requested"
    ], err

    assert run(["--root", root, "pull", "--platform", "linux/arm64", single]) == 0
    assert "WARNING" not in capsys.readouterr().err

    assert run(["--root", root, "pull", "--platform", "linux/amd64", single]) == 0
    err = capsys.readouterr().err
    assert "WARNING: image with reference" in err and "wanted linux/amd64" in err, err

    # An index is chosen from by platform: no warning.
    assert run(["--root", root, "pull", "--platform", "linux/arm64", index_ref]) == 0
    assert "WARNING" not in capsys.readouterr().err


def _host() -> str:
    from lorry.platform import Platform

    return str(Platform.host())
