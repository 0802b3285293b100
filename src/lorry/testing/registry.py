"""The real CNCF registry (``docker-registry``) as a test fixture, on 127.0.0.1 with a free port.

:func:`start_registry` writes a config (YAML written by hand: JSON scalars inside block
mappings, which any YAML parser reads), starts ``docker-registry serve`` with its output going
to ``registry.log`` in the work directory, and waits until ``GET /v2/`` answers 200 or 401.
Modes: no auth, htpasswd basic auth (bcrypt hashes), bearer tokens from a
:class:`~lorry.testing.token_issuer.TokenIssuer`, and pull-through cache (``proxy_remote_url``).
With ``tls`` (:mod:`lorry.testing.tls`) it serves HTTPS, and with ``client_auth`` it also
requires a client certificate signed by the test CA (``http.tls.clientcas``).
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import bcrypt

from lorry.errors import InvalidInputError, UnavailableError
from lorry.testing._process import stop_process

if TYPE_CHECKING:
    from lorry.testing.tls import TlsFiles
    from lorry.testing.token_issuer import TokenIssuer

__all__ = [
    "REGISTRY_BINARY",
    "RegistryServer",
    "free_port",
    "start_registry",
    "to_yaml",
    "write_htpasswd",
]

#: Where Debian's ``docker-registry`` package installs the CNCF registry.
REGISTRY_BINARY = os.environ.get("LORRY_TEST_REGISTRY_BINARY", "/usr/bin/docker-registry")
_START_TIMEOUT = 20.0
_STOP_TIMEOUT = 5.0
_PORT_ATTEMPTS = 3


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        lines: list[str] = []
        for key, item in value.items():
            if isinstance(item, Mapping | list) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(_yaml_lines(item, indent + 2))
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(item)}")
        return lines
    if isinstance(value, list):
        return [f"{pad}- {_yaml_scalar(item)}" for item in value]
    return [pad + _yaml_scalar(value)]


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, Mapping | list):
        return "{}" if isinstance(value, Mapping) else "[]"
    if value is None:
        return "null"
    return json.dumps(value)  # JSON strings, numbers and booleans are valid YAML scalars


def to_yaml(config: Mapping[str, Any]) -> str:
    """Render nested mappings of scalars (and lists of scalars) as block-style YAML."""
    return "\n".join(_yaml_lines(config, 0)) + "\n"


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into a copy of ``base``; mappings merge, other values replace."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def write_htpasswd(path: Path, users: Mapping[str, str]) -> None:
    """Write an htpasswd file with bcrypt hashes (cost 4, the minimum: tests stay fast)."""
    lines = [
        f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt(rounds=4)).decode()}"
        for user, pw in users.items()
    ]
    path.write_text("\n".join(lines) + "\n")


class RegistryServer:
    """A running ``docker-registry``; stop it with :meth:`stop` or by leaving the ``with``."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        port: int,
        workdir: Path,
        config: dict[str, Any],
        *,
        address: str = "127.0.0.1",
        tls: TlsFiles | None = None,
    ) -> None:
        self.process = process
        self.port = port
        self.workdir = workdir
        self.config = config
        self.tls = tls
        self.host = f"{address}:{port}"
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        self.storage = workdir / "storage"
        self.log_path = workdir / "registry.log"
        self.config_path = workdir / "config.yml"
        _LIVE.add(self)

    def log_text(self) -> str:
        """Everything the registry has logged so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """Terminate the registry (kill it if it does not exit within a few seconds)."""
        stop_process(self.process, _STOP_TIMEOUT)

    def __enter__(self) -> RegistryServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RegistryServer({self.url}, pid={self.process.pid})"


#: Servers not yet stopped: stopped at interpreter exit so an aborted run leaves no registry.
_LIVE: weakref.WeakSet[RegistryServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


def _base_config(address: str, port: int, storage: Path, delete: bool) -> dict[str, Any]:
    return {
        "version": "0.1",
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {
            "filesystem": {"rootdirectory": str(storage)},
            "delete": {"enabled": delete},
            "maintenance": {"uploadpurging": {"enabled": False}},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {
            "addr": f"{address}:{port}",
            "secret": "lorry-testing-secret",
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
    }


def _auth_config(
    workdir: Path,
    auth: str,
    users: Mapping[str, str] | None,
    token_issuer: TokenIssuer | None,
) -> dict[str, Any]:
    if auth == "none":
        return {}
    if auth == "basic":
        if not users:
            raise InvalidInputError("basic auth needs users={name: password}")
        htpasswd = workdir / "htpasswd"
        write_htpasswd(htpasswd, users)
        return {"auth": {"htpasswd": {"realm": "lorry-test", "path": str(htpasswd)}}}
    if auth == "token":
        if token_issuer is None:
            raise InvalidInputError("token auth needs a token_issuer")
        return {
            "auth": {
                "token": {
                    "realm": token_issuer.realm,
                    "service": token_issuer.service,
                    "issuer": token_issuer.issuer,
                    "rootcertbundle": str(token_issuer.cert_path),
                }
            }
        }
    raise InvalidInputError(f"unknown auth mode {auth!r}: want none, basic or token")


def _ping(server: RegistryServer) -> bool:
    ctx = None
    if server.tls is not None:  # the fixture's own probe: trust the test CA, show the client pair
        ctx = ssl.create_default_context(cafile=str(server.tls.ca_cert))
        ctx.check_hostname = False
        ctx.load_cert_chain(str(server.tls.client_cert), str(server.tls.client_key))
    try:
        with urllib.request.urlopen(server.url + "/v2/", timeout=2, context=ctx) as resp:
            return int(resp.status) == 200
    except urllib.error.HTTPError as err:
        return err.code == 401
    except OSError:
        return False


def _wait_ready(server: RegistryServer) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            break
        if _ping(server):
            return
        time.sleep(0.05)
    server.stop()
    tail = server.log_text()[-3000:]
    raise UnavailableError(f"starting docker-registry on {server.host} failed; its log:\n{tail}")


def start_registry(
    workdir: Path,
    *,
    auth: Literal["none", "basic", "token"] = "none",
    users: Mapping[str, str] | None = None,
    token_issuer: TokenIssuer | None = None,
    proxy_remote_url: str | None = None,
    proxy_username: str | None = None,
    proxy_password: str | None = None,
    schema1: bool = False,
    delete: bool = False,
    extra_config: Mapping[str, Any] | None = None,
    tls: TlsFiles | None = None,
    client_auth: bool = False,
    address: str = "127.0.0.1",
) -> RegistryServer:
    """Start a registry with its storage, config and log under ``workdir``; wait until ready.

    ``proxy_remote_url`` makes it a pull-through cache of that registry (read-only: pushes
    fail), ``schema1`` accepts schema1 manifests, ``delete`` allows DELETE, ``tls`` serves
    HTTPS with that server pair (``client_auth``: a client certificate from the test CA is
    required), ``address`` is the loopback address to listen on, and ``extra_config`` is
    deep-merged into the generated config last.
    """
    if shutil.which(REGISTRY_BINARY) is None:
        raise UnavailableError(f"starting the test registry: {REGISTRY_BINARY} is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    config: dict[str, Any] = {}
    config = _merge(config, _auth_config(workdir, auth, users, token_issuer))
    if proxy_remote_url is not None:
        proxy: dict[str, Any] = {"remoteurl": proxy_remote_url}
        if proxy_username is not None:
            proxy |= {"username": proxy_username, "password": proxy_password or ""}
        config["proxy"] = proxy
    if schema1:
        config["compatibility"] = {"schema1": {"enabled": True}}
    if tls is not None:
        cfg: dict[str, Any] = {"certificate": str(tls.server_cert), "key": str(tls.server_key)}
        if client_auth:
            cfg["clientcas"] = [str(tls.ca_cert)]
        config = _merge(config, {"http": {"tls": cfg}})
    elif client_auth:
        raise InvalidInputError("client_auth needs tls")
    config = _merge(config, extra_config or {})
    for attempt in range(_PORT_ATTEMPTS):
        # The free port may be taken between our probe and the registry's bind: try again.
        port = free_port()
        full = _merge(_base_config(address, port, storage, delete), config)
        server = RegistryServer(
            _spawn(workdir, full), port, workdir, full, address=address, tls=tls
        )
        try:
            _wait_ready(server)
        except UnavailableError:
            if attempt + 1 == _PORT_ATTEMPTS or "address already in use" not in server.log_text():
                raise
            continue
        return server
    raise AssertionError("unreachable")


def _spawn(workdir: Path, config: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Run ``docker-registry serve``, its stdout and stderr appended to ``registry.log``."""
    config_path = workdir / "config.yml"
    config_path.write_text(to_yaml(config))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(workdir)}
    with (workdir / "registry.log").open("ab") as log:
        return subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=workdir,
        )
