"""Remote look-ups against the real CNCF registry, with ``skopeo inspect`` as the reference peer.

``lorry inspect`` of a transport reference is compared field by field with ``skopeo inspect``
of the same image (one and two platforms, a registry and an OCI layout), ``--raw`` and
``--config --raw`` byte for byte, ``--config`` as parsed JSON. ``config``, ``delete`` (refused
by a registry without delete, accepted by one with it), ``catalog``, ``ls --format json``,
``--platform`` on ``manifest`` and ``digest``, docker's platform-mismatch warning and bad input
(one ``lorry: error:`` line, exit code by kind) are checked on real registries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lorry.cli import run
from lorry.platform import Platform, matches
from lorry.testing.builder import BuiltImage
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import SkopeoError, push_layout, run_skopeo

pytestmark = pytest.mark.integration

Capture = pytest.CaptureFixture[bytes]


@dataclass(frozen=True)
class Pushed:
    """The images of this module, pushed once to the session registry."""

    one: BuiltImage
    two: BuiltImage
    one_ref: str
    two_ref: str
    #: A single-platform image (no index) of a platform this host does not run, and it.
    foreign: BuiltImage
    foreign_ref: str


@pytest.fixture(scope="module")
def pushed(image_builder: Any, registry: RegistryServer) -> Pushed:
    one: BuiltImage = image_builder(layers=2, seed=1501)
    two: BuiltImage = image_builder(
        layers=1, seed=1502, platforms=["linux/amd64", "linux/arm64/v8"]
    )
    one_ref = push_layout(one, registry, "lookups/one", "v1")
    push_layout(one, registry, "lookups/one", "v2")
    two_ref = push_layout(two, registry, "lookups/two", "v1")
    host = Platform.host()
    foreign = next(c for c in two.children if not matches(host, Platform.parse(c.platform)))
    os_name, arch, *variant = foreign.platform.split("/")
    foreign_ref = f"docker://{registry.host}/lookups/foreign:v1"
    run_skopeo(
        [
            "--override-os",
            os_name,
            "--override-arch",
            arch,
            *(["--override-variant", variant[0]] if variant else []),
            "copy",
            "--insecure-policy",
            "--quiet",
            "--dest-tls-verify=false",
            "--preserve-digests",
            f"oci:{two.layout}:{two.tag}",
            foreign_ref,
        ]
    )
    return Pushed(one, two, one_ref, two_ref, foreign, foreign_ref)


def _skopeo(ref: str, *args: str, platform: str | None = None) -> bytes:
    """``skopeo inspect ARGS REF`` (the platform as skopeo's override flags)."""
    overrides: list[str] = []
    if platform is not None:
        os_name, arch, *variant = platform.split("/")
        overrides = ["--override-os", os_name, "--override-arch", arch]
        overrides += ["--override-variant", variant[0]] if variant else []
    tls = ["--tls-verify=false"] if ref.startswith("docker://") else []
    return run_skopeo([*overrides, "inspect", *tls, *args, ref])


def _lorry(capsysbinary: Capture, *args: str) -> tuple[int, bytes, str]:
    """Run lorry in-process: exit code, stdout bytes, stderr text."""
    capsysbinary.readouterr()
    code = run(list(args))
    out, err = capsysbinary.readouterr()
    return code, out, err.decode()


def _ok(capsysbinary: Capture, *args: str) -> bytes:
    code, out, err = _lorry(capsysbinary, *args)
    assert code == 0, err
    return out


def _error_line(capsysbinary: Capture, code: int, *args: str) -> str:
    """Run a command that must fail with ``code`` and exactly one ``lorry: error:`` line."""
    got, out, err = _lorry(capsysbinary, *args)
    assert got == code, err
    assert out == b""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lorry: error: "), err
    return lines[0]


def _same_as_skopeo(ours: dict[str, Any], theirs: dict[str, Any], image: BuiltImage) -> None:
    """Every field skopeo prints is equal; LayersData (which older skopeo leaves out) and
    Variant are checked against the built image when skopeo does not print them."""
    for key, value in theirs.items():
        assert ours.get(key) == value, key
    assert set(ours) - set(theirs) <= {"LayersData", "Variant"}
    expected_layers = [
        {"MIMEType": image.layer_media_type, "Digest": str(d), "Size": s, "Annotations": None}
        for d, s in zip(image.layer_digests, image.layer_sizes, strict=True)
    ]
    assert ours["LayersData"] == expected_layers
    variant = image.platform.split("/")[2:]
    assert ours.get("Variant") == (variant[0] if variant else None)


def test_inspect_of_a_single_platform_image_matches_skopeo(
    pushed: Pushed, capsysbinary: Capture
) -> None:
    ours = json.loads(_ok(capsysbinary, "inspect", pushed.one_ref))
    theirs = json.loads(_skopeo(pushed.one_ref))
    _same_as_skopeo(ours, theirs, pushed.one)
    assert ours["RepoTags"] == ["v1", "v2"]
    assert ours["Digest"] == str(pushed.one.manifest_digest)


@pytest.mark.parametrize("platform", [None, "linux/amd64", "linux/arm64/v8"])
def test_inspect_of_a_two_platform_image_matches_skopeo(
    pushed: Pushed, capsysbinary: Capture, platform: str | None
) -> None:
    extra = ["--platform", platform] if platform else []
    ours = json.loads(_ok(capsysbinary, "inspect", *extra, pushed.two_ref))
    theirs = json.loads(_skopeo(pushed.two_ref, platform=platform))
    wanted = Platform.parse(platform) if platform else Platform.host()
    child = next(c for c in pushed.two.children if matches(wanted, Platform.parse(c.platform)))
    _same_as_skopeo(ours, theirs, child)
    assert ours["Digest"] == str(pushed.two.index_digest)  # the top document's, as skopeo


def test_raw_and_config_match_skopeo(pushed: Pushed, capsysbinary: Capture) -> None:
    for ref in (pushed.one_ref, pushed.two_ref):
        assert _ok(capsysbinary, "inspect", "--raw", ref) == _skopeo(ref, "--raw")
        config = _ok(capsysbinary, "inspect", "--config", ref)
        assert json.loads(config) == json.loads(_skopeo(ref, "--config"))
        raw_config = _ok(capsysbinary, "inspect", "--config", "--raw", ref)
        assert raw_config == _skopeo(ref, "--config", "--raw")
    assert _ok(capsysbinary, "inspect", "--raw", pushed.two_ref) == pushed.two.index_bytes
    arm = pushed.two.children[1]
    shown = _ok(capsysbinary, "inspect", "--raw", "--platform", "linux/arm64", pushed.two_ref)
    assert shown == arm.manifest_bytes


def test_inspect_of_an_oci_layout_matches_skopeo(pushed: Pushed, capsysbinary: Capture) -> None:
    ref = f"oci:{pushed.one.layout}:{pushed.one.tag}"
    ours = json.loads(_ok(capsysbinary, "inspect", ref))
    _same_as_skopeo(ours, json.loads(_skopeo(ref)), pushed.one)
    assert "Name" not in ours and ours["RepoTags"] == []


def test_inspect_of_the_local_store_by_prefix_and_by_bare_name(
    pushed: Pushed, tmp_path: Path, capsysbinary: Capture
) -> None:
    root = str(tmp_path / "root")
    _ok(
        capsysbinary,
        "--root",
        root,
        "copy",
        "-q",
        f"oci:{pushed.one.layout}:latest",
        "lorry:app:v1",
    )
    prefixed = json.loads(_ok(capsysbinary, "--root", root, "inspect", "lorry:app:v1"))
    assert prefixed["Layers"] == [str(d) for d in pushed.one.layer_digests]
    assert prefixed["Digest"] == str(pushed.one.manifest_digest)
    bare = json.loads(_ok(capsysbinary, "--root", root, "inspect", "app:v1"))
    assert isinstance(bare, list) and bare[0]["Id"] == str(pushed.one.config_digest)


def test_config_prints_the_chosen_platform_config_bytes(
    pushed: Pushed, capsysbinary: Capture
) -> None:
    bare = pushed.one_ref.removeprefix("docker://")
    assert _ok(capsysbinary, "config", bare) == pushed.one.config_bytes
    arm = pushed.two.children[1]
    assert _ok(capsysbinary, "config", "--platform", "linux/arm64", pushed.two_ref) == (
        arm.config_bytes
    )
    layout = f"oci:{pushed.two.layout}:{pushed.two.tag}"
    assert _ok(capsysbinary, "config", "--platform", "linux/arm64", layout) == arm.config_bytes


def test_manifest_and_digest_take_a_platform(pushed: Pushed, capsysbinary: Capture) -> None:
    bare = pushed.two_ref.removeprefix("docker://")
    arm = pushed.two.children[1]
    assert _ok(capsysbinary, "manifest", bare) == pushed.two.index_bytes
    assert _ok(capsysbinary, "digest", bare).decode().strip() == str(pushed.two.index_digest)
    assert _ok(capsysbinary, "manifest", "--platform", "linux/arm64", bare) == arm.manifest_bytes
    shown = _ok(capsysbinary, "digest", "--platform", "linux/arm64/v8", bare).decode().strip()
    assert shown == str(arm.manifest_digest)


def test_a_foreign_single_platform_image_warns_as_docker_does(
    pushed: Pushed, capsysbinary: Capture
) -> None:
    actual = pushed.foreign.platform
    host = Platform.host()
    code, out, err = _lorry(capsysbinary, "inspect", pushed.foreign_ref)
    assert code == 0 and json.loads(out)["Digest"] == str(pushed.foreign.manifest_digest)
    assert err.splitlines() == [
        f"WARNING: The requested image's platform ({actual}) does not match the detected host "
        f"platform ({host}) and no specific platform was requested"
    ]
    code, out, err = _lorry(capsysbinary, "config", "--platform", actual, pushed.foreign_ref)
    assert code == 0 and out == pushed.foreign.config_bytes and err == ""
    other = str(host)
    bare = pushed.foreign_ref.removeprefix("docker://")
    code, out, err = _lorry(capsysbinary, "digest", "--platform", other, bare)
    assert code == 0 and out.decode().strip() == str(pushed.foreign.manifest_digest)
    assert err.splitlines() == [
        f"WARNING: image with reference {bare} was found but does not match the specified "
        f"platform: wanted {Platform.parse(other)}, actual: {actual}"
    ]
    # An index is chosen from by platform: no warning, whatever the host.
    assert _lorry(capsysbinary, "inspect", pushed.two_ref)[2] == ""


def test_delete_is_refused_by_a_registry_without_delete(
    pushed: Pushed, capsysbinary: Capture
) -> None:
    line = _error_line(capsysbinary, 7, "delete", pushed.one_ref)
    assert "refuses deletes (405 UNSUPPORTED)" in line and "storage.delete.enabled" in line
    assert str(pushed.one.manifest_digest) in line
    assert _skopeo(pushed.one_ref, "--raw") == pushed.one.manifest_bytes  # still there


def test_delete_removes_the_manifest_from_a_registry_with_delete(
    image_builder: Any, registry_factory: Any, capsysbinary: Capture
) -> None:
    server: RegistryServer = registry_factory(delete=True)
    built: BuiltImage = image_builder(layers=1, seed=1503)
    ref = push_layout(built, server, "gone/app", "v1")
    out = _ok(capsysbinary, "delete", ref.removeprefix("docker://"))
    assert out.decode() == f"Deleted: {server.host}/gone/app@{built.manifest_digest}\n"
    with pytest.raises(SkopeoError, match="manifest unknown"):
        _skopeo(ref, "--raw")
    line = _error_line(capsysbinary, 3, "manifest", ref.removeprefix("docker://"))
    assert "v1" in line
    line = _error_line(capsysbinary, 3, "delete", ref)
    assert f"{server.host}/gone/app:v1" in line


def test_catalog_and_ls_in_text_and_json(
    image_builder: Any, registry_factory: Any, capsysbinary: Capture
) -> None:
    server: RegistryServer = registry_factory()
    built: BuiltImage = image_builder(layers=1, seed=1504)
    for repo, tag in (("team/b", "v1"), ("a", "v1"), ("a", "v2")):
        push_layout(built, server, repo, tag)
    assert _ok(capsysbinary, "catalog", server.host).decode().splitlines() == ["a", "team/b"]
    lines = _ok(capsysbinary, "catalog", "--format", "json", server.host).decode().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"Repository": f"{server.host}/a"},
        {"Repository": f"{server.host}/team/b"},
    ]
    lines = _ok(capsysbinary, "ls", "--format", "json", f"{server.host}/a").decode().splitlines()
    assert [json.loads(x) for x in lines] == [
        {"Repository": f"{server.host}/a", "Tag": "v1"},
        {"Repository": f"{server.host}/a", "Tag": "v2"},
    ]


def test_bad_input_is_one_line_with_the_exit_code_of_its_kind(
    pushed: Pushed, capsysbinary: Capture
) -> None:
    missing = pushed.one_ref.replace(":v1", ":nope")
    line = _error_line(capsysbinary, 3, "inspect", missing)
    assert "nope" in line and "lookups/one" in line
    _error_line(capsysbinary, 3, "config", missing)
    line = _error_line(capsysbinary, 2, "inspect", "--platform", "linux/", pushed.one_ref)
    assert "linux/" in line
    _error_line(capsysbinary, 2, "manifest", "--platform", "nonsense/x/y/z", "r.example/a:1")
    line = _error_line(capsysbinary, 2, "inspect", "--raw", "alpine:3.20")
    assert "--raw" in line
    line = _error_line(capsysbinary, 2, "inspect", pushed.one_ref, pushed.two_ref)
    assert pushed.one_ref in line
    line = _error_line(capsysbinary, 2, "catalog", "not-a-host")
    assert "not-a-host" in line
    line = _error_line(capsysbinary, 2, "delete", "oci:/tmp/x:1")
    assert "oci:/tmp/x:1" in line
    line = _error_line(capsysbinary, 2, "inspect", "dir:/tmp/x")
    assert "dir" in line


def test_go_templates_on_remote_inspect_and_ls(pushed: Pushed, capsysbinary: Capture) -> None:
    # skopeo inspect --format takes the same templates over the same document.
    template = "{{.Digest}} {{.Os}}/{{.Architecture}} {{len .Layers}}"
    ours = _ok(capsysbinary, "inspect", "--format", template, pushed.one_ref)
    assert ours == _skopeo(pushed.one_ref, "--format", template)
    config = _ok(
        capsysbinary, "inspect", "--config", "-f", "{{json .rootfs.diff_ids}}", pushed.one_ref
    )
    assert json.loads(config) == [str(d) for d in pushed.one.diff_ids]
    bare, tag = pushed.one_ref.removeprefix("docker://").rsplit(":", 1)
    lines = _ok(capsysbinary, "ls", "--format", "{{.Repository}}:{{.Tag}}", bare).decode().split()
    assert lines == [f"{bare}:{t}" for t in _ok(capsysbinary, "ls", bare).decode().split()]
    assert f"{bare}:{tag}" in lines
    line = _error_line(capsysbinary, 2, "ls", "--format", "{{.Digest}}", bare)
    assert "unknown field .Digest" in line
