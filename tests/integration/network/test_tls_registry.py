"""TLS registries as users have them (issue 15): certs.d, --cert-dir, client certificates,
--tls-verify=false, docker's insecure rule, and pulls and pushes through a real proxy.

The registry is the real CNCF registry serving HTTPS with a CA made here. It listens on
loopback but is named by this machine's host name, which lorry (like docker) treats as a
remote host: its certificate is verified, a proxy is used, no plain-HTTP fallback.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from lorry.cli import run
from lorry.testing.builder import BuiltImage
from lorry.testing.pytest_plugin import ImageBuilder
from lorry.testing.registry import RegistryServer, start_registry
from lorry.testing.tinyproxy import Tinyproxy, start_tinyproxy
from lorry.testing.tls import TlsFiles, local_name, make_tls_files

pytestmark = pytest.mark.integration

AUTH, UNAVAILABLE = 5, 6
NAME = local_name()
needs_name = pytest.mark.skipif(
    NAME is None, reason="this machine's host name does not resolve to a loopback address"
)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    names = ["localhost", "127.0.0.1", *(NAME or ())]
    return make_tls_files(tmp_path_factory.mktemp("tls"), names)


def _serve(workdir: Path, tls: TlsFiles | None, *, client_auth: bool = False) -> RegistryServer:
    address = NAME[1] if NAME else "127.0.0.1"
    return start_registry(workdir, tls=tls, client_auth=client_auth, address=address)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[RegistryServer]:
    server = _serve(tmp_path_factory.mktemp("tls-registry"), tls)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mutual(tmp_path_factory: pytest.TempPathFactory, tls: TlsFiles) -> Iterator[RegistryServer]:
    server = _serve(tmp_path_factory.mktemp("mtls-registry"), tls, client_auth=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No certs.d but the test's own, no proxy or config from the environment."""
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    certs_d = tmp_path / "certs.d"
    certs_d.mkdir()
    monkeypatch.setenv("LORRY_CERTS_D", str(certs_d))
    return certs_d


def _named(server: RegistryServer) -> str:
    """``HOST:PORT`` by this machine's name: not loopback to lorry."""
    assert NAME is not None
    return f"{NAME[0]}:{server.port}"


def _trust(certs_d: Path, host: str, tls: TlsFiles, *, client: bool = False) -> Path:
    """certs.d/HOST with the CA (and the client pair), as docker reads it."""
    d = certs_d / host
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(tls.ca_cert, d / "ca.crt")
    if client:
        shutil.copy(tls.client_cert, d / "client.cert")
        shutil.copy(tls.client_key, d / "client.key")
    return d


def _lorry(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(["--root", str(root), *args])
    return code, capsys.readouterr().err


def _seed(built: BuiltImage, ref: str, root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _lorry(root, capsys, "copy", f"oci:{built.layout}:{built.tag}", f"docker://{ref}")
    assert code == 0, err


@needs_name
def test_verified_tls_needs_the_ca_from_certs_d_or_cert_dir(
    secure: RegistryServer,
    tls: TlsFiles,
    isolated: Path,
    image_builder: ImageBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = _named(secure)
    ref = f"{host}/tls/app:v1"
    built = image_builder(layers=2, seed=1501)
    code, err = _lorry(tmp_path / "s0", capsys, "pull", "-q", ref)
    assert code == AUTH and err.count("\n") == 1, err
    assert "certificate verification failed" in err and host in err and "certs.d" in err, err
    ca_dir = _trust(isolated, host, tls)
    _seed(built, ref, tmp_path / "s1", capsys)  # push over verified TLS
    code, err = _lorry(tmp_path / "s2", capsys, "pull", "-q", ref)
    assert code == 0, err
    shutil.rmtree(ca_dir)
    code, err = _lorry(
        tmp_path / "s3", capsys, "pull", "-q", "--cert-dir", str(tls.ca_cert.parent), ref
    )
    assert code == 0, err  # --cert-dir: the *.crt there, instead of certs.d
    code, err = _lorry(tmp_path / "s4", capsys, "pull", "-q", "--tls-verify=false", ref)
    assert code == 0, err  # no CA at all: not verified, as asked
    code, err = _lorry(tmp_path / "s5", capsys, "--insecure-registry", host, "pull", "-q", ref)
    assert code == 0, err  # docker's insecure rule: HTTPS without verification first
    # loopback is insecure by default: the same registry by address needs no CA
    code, err = _lorry(tmp_path / "s6", capsys, "pull", "-q", f"{secure.host}/tls/app:v1")
    assert code == 0, err


@needs_name
def test_a_registry_that_wants_a_client_certificate(
    mutual: RegistryServer,
    tls: TlsFiles,
    isolated: Path,
    image_builder: ImageBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = _named(mutual)
    ref = f"{host}/mtls/app:v1"
    ca_only = _trust(isolated, host, tls)
    code, err = _lorry(tmp_path / "s0", capsys, "pull", "-q", ref)
    assert code == AUTH and err.count("\n") == 1, err
    assert "client certificate" in err and host in err, err
    shutil.rmtree(ca_only)
    _trust(isolated, host, tls, client=True)
    _seed(image_builder(layers=1, seed=1502), ref, tmp_path / "s1", capsys)
    code, err = _lorry(tmp_path / "s2", capsys, "pull", "-q", ref)
    assert code == 0, err


@needs_name
def test_insecure_falls_back_to_plain_http_only_when_named_insecure(
    isolated: Path,
    image_builder: ImageBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    plain = _serve(tmp_path / "plain", None)
    try:
        host = _named(plain)
        ref = f"{host}/plain/app:v1"
        code, err = _lorry(tmp_path / "s0", capsys, "pull", "-q", ref)
        assert code == UNAVAILABLE and "does not speak TLS" in err and "--insecure-registry" in err
        built = image_builder(layers=1, seed=1503)
        code, err = _lorry(
            tmp_path / "s1",
            capsys,
            "--insecure-registry",
            host,
            "copy",
            f"oci:{built.layout}:{built.tag}",
            f"docker://{ref}",
        )
        assert code == 0, err
        code, err = _lorry(tmp_path / "s2", capsys, "pull", "-q", "--tls-verify=false", ref)
        assert code == 0, err
    finally:
        plain.stop()


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    if shutil.which("tinyproxy") is None:
        pytest.fail("tinyproxy is installed by scripts/test")
    (tmp_path / "proxy-work").mkdir()
    proxy = start_tinyproxy(tmp_path / "proxy-work")
    try:
        yield proxy
    finally:
        proxy.stop()


@needs_name
def test_pull_and_push_through_a_proxy_and_no_proxy_bypasses_it(
    secure: RegistryServer,
    tls: TlsFiles,
    isolated: Path,
    tinyproxy: Tinyproxy,
    image_builder: ImageBuilder,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host = _named(secure)
    ref = f"{host}/proxied/app:v1"
    _trust(isolated, host, tls)
    monkeypatch.setenv("HTTPS_PROXY", tinyproxy.url)
    _seed(image_builder(layers=2, seed=1504), ref, tmp_path / "s1", capsys)
    tunnels = tinyproxy.log().count(f"CONNECT {host}")
    assert tunnels >= 1, tinyproxy.log()
    code, err = _lorry(tmp_path / "s2", capsys, "pull", "-q", ref)
    assert code == 0, err
    assert tinyproxy.log().count(f"CONNECT {host}") > tunnels
    tunnels = tinyproxy.log().count(f"CONNECT {host}")
    monkeypatch.setenv("NO_PROXY", NAME[0] if NAME else "")
    code, err = _lorry(tmp_path / "s3", capsys, "pull", "-q", ref)
    assert code == 0, err
    assert tinyproxy.log().count(f"CONNECT {host}") == tunnels  # went direct
    # lorry.toml's proxy: the same, with no proxy in the environment
    for var in ("HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(var)
    config = tmp_path / "lorry.toml"
    config.write_text(f'proxy = "{tinyproxy.url}"\n')
    code, err = _lorry(tmp_path / "s4", capsys, "--config", str(config), "pull", "-q", ref)
    assert code == 0, err
    assert tinyproxy.log().count(f"CONNECT {host}") > tunnels
