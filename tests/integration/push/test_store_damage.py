"""A damaged store is never trusted (issue 16, items 1 and 2), end to end through the CLI.

Push reads stored blobs through the verifying upload body and stored manifests by digest, so a
flipped byte fails the push (exit 4) before any manifest goes up. Pull treats a missing or
short layer blob, and a missing or corrupt config, as absent: it fetches them again and the
store is clean afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lorry.cli.app import run
from lorry.digest import Digest
from lorry.store import Store
from lorry.testing.builder import BuiltImage
from lorry.testing.registry import RegistryServer, start_registry
from lorry.testing.skopeo import SKOPEO_BINARY, push_layout

pytestmark = pytest.mark.integration

INTEGRITY = 4


def _blob(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.encoded


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _pulled(
    registry: RegistryServer, built: BuiltImage, tmp_path: Path, repo: str
) -> tuple[Path, str]:
    src = push_layout(built, registry, repo, "v1").removeprefix("docker://")
    root = tmp_path / "store"
    assert run(["--root", str(root), "pull", "-q", src]) == 0
    return root, src


def _manifest_exists(ref: str) -> bool:
    proc = subprocess.run(
        [SKOPEO_BINARY, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _fsck_clean(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert run(["--root", str(root), "fsck"]) == 0, capsys.readouterr()


def test_a_flipped_stored_layer_fails_the_push_and_no_manifest_goes_up(
    registry: RegistryServer, image_builder, tmp_path: Path, capsys
) -> None:
    built = image_builder(layers=2, seed=1601)
    root, src = _pulled(registry, built, tmp_path, "damage/flip-src")
    _flip(_blob(root, built.layer_digests[1]))
    with start_registry(tmp_path / "other") as other:  # nothing to mount from: bytes must go
        dst = f"{other.host}/damage/flip-dst:v1"
        capsys.readouterr()
        assert run(["--root", str(root), "push", "-q", src, dst]) == INTEGRITY
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and built.layer_digests[1].encoded[:12] in err[0], err
        assert not _manifest_exists(dst)


def test_a_corrupted_stored_manifest_is_an_error_not_another_digest(
    registry: RegistryServer, image_builder, tmp_path: Path, capsys
) -> None:
    built = image_builder(layers=1, seed=1602)
    root, src = _pulled(registry, built, tmp_path, "damage/manifest-src")
    path = _blob(root, built.manifest_digest)
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":2 '))
    dst = f"{registry.host}/damage/manifest-dst:v1"
    capsys.readouterr()
    assert run(["--root", str(root), "push", "-q", src, dst]) == INTEGRITY
    err = capsys.readouterr().err
    assert f"stored manifest {built.manifest_digest}" in err and "damaged" in err
    assert not _manifest_exists(dst)


@pytest.mark.parametrize(
    "damage",
    [
        "delete-layer",
        "truncate-layer",
        "flip-layer",
        "delete-config",
        "truncate-config",
        "flip-config",
    ],
)
def test_pull_heals_a_damaged_store(
    registry: RegistryServer, image_builder, tmp_path: Path, capsys, damage: str
) -> None:
    built = image_builder(layers=2, seed=1603)
    root, src = _pulled(registry, built, tmp_path, f"damage/heal-{damage}")
    what, target = damage.split("-")
    path = _blob(root, built.config_digest if target == "config" else built.layer_digests[0])
    if what == "delete":
        path.unlink()
    elif what == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        _flip(path)
    capsys.readouterr()
    assert run(["--root", str(root), "pull", "--progress", "json", src]) == 0
    _fsck_clean(root, capsys)
    with Store.open(root) as store:
        assert store.content.exists(built.config_digest)
        assert all(store.content.exists(d) for d in built.layer_digests)
    assert run(["--root", str(root), "push", "-q", src, f"{registry.host}/damage/healed:v1"]) == 0
    assert json.loads(
        subprocess.run(
            [
                SKOPEO_BINARY,
                "inspect",
                "--raw",
                "--tls-verify=false",
                f"docker://{registry.host}/damage/healed:v1",
            ],
            capture_output=True,
            check=True,
        ).stdout
    )["config"]["digest"] == str(built.config_digest)


def test_pushes_that_fail_fast_never_die_of_a_signal(
    registry: RegistryServer, image_builder, tmp_path: Path
) -> None:
    # A worker thread still in the store when the command closes it once segfaulted (exit 139).
    built = image_builder(layers=4, seed=1604)
    root, src = _pulled(registry, built, tmp_path, "damage/fast-fail-src")
    path = _blob(root, built.layer_digests[2])
    path.write_bytes(path.read_bytes()[:1000])
    with start_registry(tmp_path / "other") as other:
        cmd = [sys.executable, "-m", "lorry", "--root", str(root), "push", "-q", src]
        codes: list[int] = []
        for batch in range(10):
            procs = [
                subprocess.Popen(
                    [*cmd, f"{other.host}/damage/fast-fail-{batch}-{i}:v1"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i in range(4)
            ]
            codes += [p.wait(timeout=120) for p in procs]
    assert all(code > 0 for code in codes), codes  # failed, and by exit code, not by signal
    assert set(codes) <= {2, 4}, codes
