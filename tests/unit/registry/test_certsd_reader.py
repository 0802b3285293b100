"""certs.d reading: CA files, client pairs, and the bad-input lines for broken material."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from lorry.errors import InvalidInputError
from lorry.registry.certsd import default_roots, load_into, read_host_dir
from lorry.registry.config import RegistryConfig

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _selfsigned(d: Path, name: str) -> tuple[Path, Path]:
    cert, key = d / f"{name}.pem", d / f"{name}-key.pem"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}"]
    subprocess.run(
        ["openssl", *args, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("pems")
    a_cert, a_key = _selfsigned(d, "a")
    b_cert, b_key = _selfsigned(d, "b")
    return {"a_cert": a_cert, "a_key": a_key, "b_cert": b_cert, "b_key": b_key}


def _host_dir(root: Path, host: str = "r.example:5000") -> Path:
    d = root / host
    d.mkdir(parents=True)
    return d


def test_reads_cas_and_pairs_across_roots_and_loads_them(
    tmp_path: Path, pems: dict[str, Path]
) -> None:
    d1, d2 = _host_dir(tmp_path / "one"), _host_dir(tmp_path / "two")
    shutil.copy(pems["a_cert"], d1 / "ca.crt")
    shutil.copy(pems["b_cert"], d2 / "client.cert")
    shutil.copy(pems["b_key"], d2 / "client.key")
    (d2 / "README").write_text("ignored")
    found = read_host_dir("r.example:5000", [tmp_path / "one", tmp_path / "two", tmp_path / "x"])
    assert found.cas == (d1 / "ca.crt",)
    assert found.clients == ((d2 / "client.cert", d2 / "client.key"),)
    ctx = ssl.create_default_context()
    load_into(ctx, found)
    assert any(c.get("subject") == ((("commonName", "a"),),) for c in ctx.get_ca_certs())
    assert read_host_dir("other.example", [tmp_path / "one"]).cas == ()


def test_not_pem_names_the_file(tmp_path: Path) -> None:
    d = _host_dir(tmp_path)
    (d / "ca.crt").write_bytes(b"\x30\x82 not pem")
    with pytest.raises(InvalidInputError, match=r"ca\.crt: not a PEM file"):
        read_host_dir("r.example:5000", [tmp_path])


def test_cert_without_key_names_the_file(tmp_path: Path, pems: dict[str, Path]) -> None:
    d = _host_dir(tmp_path)
    shutil.copy(pems["a_cert"], d / "client.cert")
    with pytest.raises(InvalidInputError, match=r"client\.cert: client certificate without"):
        read_host_dir("r.example:5000", [tmp_path])


def test_mismatched_key_names_the_key(tmp_path: Path, pems: dict[str, Path]) -> None:
    d = _host_dir(tmp_path)
    shutil.copy(pems["a_cert"], d / "client.cert")
    shutil.copy(pems["b_key"], d / "client.key")
    found = read_host_dir("r.example:5000", [tmp_path])
    with pytest.raises(InvalidInputError, match=r"client\.key: key does not match client\.cert"):
        load_into(ssl.create_default_context(), found)


def test_roots_default_and_override(tmp_path: Path) -> None:
    roots = default_roots({"HOME": str(tmp_path)})
    assert roots[0] == Path("/etc/docker/certs.d")
    assert roots[-1] == tmp_path / ".config/containers/certs.d"
    assert default_roots({"LORRY_CERTS_D": f"{tmp_path}/a:{tmp_path}/b"}) == (
        tmp_path / "a",
        tmp_path / "b",
    )


def test_registry_config_ssl_context_reads_certs_d(tmp_path: Path, pems: dict[str, Path]) -> None:
    d = _host_dir(tmp_path)
    shutil.copy(pems["a_cert"], d / "ca.crt")
    ctx = RegistryConfig(certs_roots=(tmp_path,)).ssl_context("r.example:5000")
    assert any(c.get("subject") == ((("commonName", "a"),),) for c in ctx.get_ca_certs())
    (d / "bad.crt").write_text("nope")
    with pytest.raises(InvalidInputError, match=r"bad\.crt: not a PEM file"):
        RegistryConfig(certs_roots=(tmp_path,)).ssl_context("r.example:5000")
