"""The CLI under a lorry.toml: mirrors, concurrency, store root precedence and clear errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.store import Store
from lorry.testing.builder import LayerSpec
from lorry.testing.faultproxy import FaultProxy
from lorry.testing.pytest_plugin import ImageBuilder, RegistryFactory
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout

pytestmark = pytest.mark.integration
BLOB_GET = re.compile(r"/v2/.+/blobs/(sha256:[0-9a-f]{64})$")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No user config, store or LORRY_* variable leaks into these tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for var in ("LORRY_CONFIG", "LORRY_ROOT", "LORRY_MAX_CONCURRENT_DOWNLOADS"):
        monkeypatch.delenv(var, raising=False)


def lorry(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = run(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_configured_mirror_serves_the_pull(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    registry_factory: RegistryFactory,
    image_builder: ImageBuilder,
) -> None:
    upstream = registry_factory()
    built = image_builder(layers=2, seed=71)
    push_layout(built, upstream, "cfg/mirrored")
    cache = registry_factory(proxy_remote_url=upstream.url)
    # The name pulled is the upstream as seen through `front`, so a direct request shows there.
    with FaultProxy(upstream.url) as front, FaultProxy(cache.url) as mirror:
        ref = f"{front.host}/cfg/mirrored:latest"
        config = write_config(
            tmp_path / "lorry.toml", f'[registries."{front.host}"]\nmirrors = ["{mirror.url}"]\n'
        )
        rc, out, err = lorry(
            capsys, "--root", str(tmp_path / "a"), "--config", str(config), "pull", "-q", ref
        )
        assert (rc, out) == (0, f"{ref}\n"), err
        assert front.requests == []
        served = {
            m[1] for r in mirror.requests if r.status == 200 and (m := BLOB_GET.search(r.path))
        }
        assert served >= {str(d) for d in built.layer_digests}
        assert any("/manifests/" in r.path and r.status == 200 for r in mirror.requests)
        # The same pull without the config goes to the upstream name itself.
        before = len(mirror.requests)
        rc, _, err = lorry(capsys, "--root", str(tmp_path / "b"), "pull", "-q", ref)
        assert rc == 0, err
        assert any(BLOB_GET.search(r.path) for r in front.requests)
        assert len(mirror.requests) == before


def _downloading_runs(err: str) -> tuple[list[str], dict[str, int]]:
    """Layer ids in the order their ``Downloading`` events came, runs collapsed; and counts."""
    runs: list[str] = []
    counts: dict[str, int] = {}
    for line in err.splitlines():
        message = json.loads(line)
        if message.get("status") != "Downloading":
            continue
        counts[message["id"]] = counts.get(message["id"], 0) + 1
        if not runs or runs[-1] != message["id"]:
            runs.append(message["id"])
    return runs, counts


def test_max_concurrent_downloads_one_downloads_one_layer_at_a_time(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    registry: RegistryServer,
    image_builder: ImageBuilder,
) -> None:
    layers = [LayerSpec(files=3, size=3 << 20, random_fraction=1.0, extras=False)] * 4
    built = image_builder(layers=layers, seed=72)
    ref = push_layout(built, registry, "cfg/serial").removeprefix("docker://")
    rc, _, err = lorry(
        capsys,
        "--root",
        str(tmp_path / "s"),
        "pull",
        "--progress",
        "json",
        "--max-concurrent-downloads",
        "1",
        ref,
    )
    assert rc == 0, err
    runs, counts = _downloading_runs(err)
    assert len(counts) == 4
    assert min(counts.values()) >= 2  # several updates per layer, so interleaving would show
    assert len(runs) == len(set(runs)), f"downloads overlapped: {runs}"


def test_the_config_sets_the_download_limit_and_the_flag_wins(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    registry: RegistryServer,
    image_builder: ImageBuilder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    layers = [LayerSpec(files=3, size=3 << 20, random_fraction=1.0, extras=False)] * 4
    ref = push_layout(image_builder(layers=layers, seed=72), registry, "cfg/serial2")
    ref = ref.removeprefix("docker://")
    monkeypatch.setenv(
        "LORRY_CONFIG", str(write_config(tmp_path / "l.toml", "max_concurrent_downloads = 1\n"))
    )
    rc, _, err = lorry(capsys, "--root", str(tmp_path / "s"), "pull", "--progress", "json", ref)
    assert rc == 0, err
    runs, counts = _downloading_runs(err)
    assert len(counts) == 4 and len(runs) == len(set(runs)), runs
    monkeypatch.setenv("LORRY_MAX_CONCURRENT_DOWNLOADS", "-1")
    rc, _, err = lorry(capsys, "pull", "--max-concurrent-downloads", "0", ref)
    assert rc == 2
    assert err == (
        "lorry: error: LORRY_MAX_CONCURRENT_DOWNLOADS: must be an integer >= 0 "
        "(0 means unlimited), got -1\n"
    )


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("max_concurrent_downloads = -3\n", "max_concurrent_downloads: must be an integer >= 0"),
        ("[registries.localhost]\nmirrors = 'x'\n", 'registries."localhost".mirrors: must be a'),
        ("concurrency = 3\n", "concurrency: unknown key (known: "),
        ("root = [\n", "invalid TOML: "),
    ],
)
def test_an_invalid_config_is_one_error_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, rule: str
) -> None:
    config = write_config(tmp_path / "lorry.toml", text)
    for args in (["--config", str(config), "images"], ["pull", "127.0.0.1:9/x"]):
        if "--config" not in args:
            # The default location counts too.
            default = tmp_path / "xdg-config" / "lorry" / "lorry.toml"
            default.parent.mkdir(parents=True)
            default.write_text(text)
            config = default
        rc, out, err = lorry(capsys, *args)
        assert rc == 2 and out == ""
        assert err.startswith(f"lorry: error: {config}: {rule}"), err
        assert err.count("\n") == 1


def test_store_root_precedence_matches_store_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def opened(root: Path) -> bool:
        return (root / "lorry-store.json").exists()

    default = tmp_path / "xdg-data" / "lorry" / "store"
    assert lorry(capsys, "images", "-q")[0] == 0
    assert opened(default)
    with Store.open() as store:
        assert store.root == default
    config = write_config(tmp_path / "c" / "lorry.toml", 'root = "from-config"\n')
    assert lorry(capsys, "--config", str(config), "images", "-q")[0] == 0
    assert opened(tmp_path / "c" / "from-config")
    monkeypatch.setenv("LORRY_ROOT", str(tmp_path / "from-env"))
    assert lorry(capsys, "--config", str(config), "images", "-q")[0] == 0
    assert opened(tmp_path / "from-env")
    with Store.open() as store:
        assert store.root == tmp_path / "from-env"
    flag = tmp_path / "from-flag"
    assert lorry(capsys, "--root", str(flag), "--config", str(config), "images", "-q")[0] == 0
    assert opened(flag)
