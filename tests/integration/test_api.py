"""The typed top-level API: ``lorry.pull/push/copy`` and their ``_sync`` twins (issue 15 §4).

They honour lorry.toml (here its ``root``) without the caller wiring settings, keep digests
like the commands do, and the blocking twins work from inside a running event loop.
"""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path

import pytest

import lorry
import lorry.api
from lorry.errors import NotFoundError
from lorry.settings import Settings
from lorry.store import Store
from lorry.testing.builder import BuiltImage
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import skopeo_inspect_raw

pytestmark = pytest.mark.integration


def test_the_front_door_is_typed_and_lazy() -> None:
    assert lorry.pull_sync is lorry.api.pull_sync
    params = inspect.signature(lorry.pull_sync).parameters
    assert [p for p in params] == ["ref", "options", "store", "settings", "sink"]
    assert "Any" not in str(inspect.signature(lorry.push_sync))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = lorry.nope  # type: ignore[attr-defined]


def test_copy_pull_push_with_lorry_toml(
    image_builder,
    registry: RegistryServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built: BuiltImage = image_builder(layers=2, seed=1515)
    root = tmp_path / "store-from-toml"
    toml = tmp_path / "lorry.toml"
    toml.write_text(f'root = "{root}"\nmax_attempts = 2\n')
    monkeypatch.setenv("LORRY_CONFIG", str(toml))
    src = f"oci:{built.layout}:{built.tag}"
    dst = f"{registry.host}/api/copy:v1"

    copied = lorry.copy_sync(src, f"docker://{dst}")
    assert copied.digest == built.manifest_digest
    assert not root.exists(), "a copy between two registries/layouts opens no store"
    assert skopeo_inspect_raw(f"docker://{dst}") == built.manifest_bytes

    pulled = lorry.pull_sync(dst, lorry.PullOptions(platform="linux/amd64"))
    assert pulled.manifest_digest == built.manifest_digest
    with Store.open(root) as store:
        assert store.images.find(built.config_digest) is not None

    pushed = lorry.push_sync(dst, f"{registry.host}/api/pushed:v1")
    assert pushed.manifest_digest == built.manifest_digest


def test_sync_twins_work_inside_a_running_event_loop(
    image_builder, registry: RegistryServer, tmp_path: Path
) -> None:
    built: BuiltImage = image_builder(layers=1, seed=1616)
    settings = Settings(root=tmp_path / "store")
    out = tmp_path / "layout"

    async def caller() -> lorry.CopyResult:
        return lorry.copy_sync(f"oci:{built.layout}:{built.tag}", f"oci:{out}:t", settings=settings)

    result = asyncio.run(caller())
    assert result.digest == built.manifest_digest
    assert (out / "index.json").is_file()


def test_async_pull_reports_errors_by_kind(registry: RegistryServer, tmp_path: Path) -> None:
    settings = Settings(root=tmp_path / "store")
    with pytest.raises(NotFoundError):
        asyncio.run(lorry.pull(f"{registry.host}/api/absent:v1", settings=settings))
