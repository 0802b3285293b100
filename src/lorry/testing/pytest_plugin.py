"""pytest fixtures for lorry's tests: real registries, token issuers and built images.

Load it with ``pytest_plugins = ["lorry.testing.pytest_plugin"]`` in a top-level conftest.
Everything a fixture starts listens on 127.0.0.1 and is stopped at the fixture's teardown.

- ``registry``: one plain registry for the whole session (repositories are shared: use names
  unique to your test);
- ``proxy``: a :class:`~lorry.testing.faultproxy.FaultProxy` in front of ``registry``, with no
  faults until the test adds them;
- ``registry_factory(**start_registry options)``: more registries, stopped after the test;
- ``token_issuer_factory(**TokenIssuer options)``: started token issuers, stopped after the test;
- ``hostile_registry(**HostileRegistry options)``: started
  :class:`~lorry.testing.hostile.HostileRegistry` servers, stopped after the test;
- ``dockerd``: one private :class:`~lorry.testing.dockerd.DockerDaemon` for the whole session
  (image names are shared: use names unique to your test);
- ``image_builder(**build_image options)``: built images, cached per session by arguments —
  treat their layouts as read-only, or call :func:`~lorry.testing.builder.build_image` into
  ``tmp_path`` for a layout you may change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lorry.testing.builder import BuiltImage, build_image
from lorry.testing.dockerd import DockerDaemon, start_dockerd
from lorry.testing.faultproxy import FaultProxy
from lorry.testing.hostile import HostileRegistry
from lorry.testing.registry import RegistryServer, start_registry
from lorry.testing.token_issuer import TokenIssuer

__all__ = [
    "dockerd",
    "hostile_registry",
    "image_builder",
    "proxy",
    "registry",
    "registry_factory",
    "token_issuer_factory",
]

#: ``registry_factory``'s type: keyword options of :func:`start_registry` → a running server.
RegistryFactory = Callable[..., RegistryServer]
#: ``token_issuer_factory``'s type: keyword options of :class:`TokenIssuer` → a running issuer.
TokenIssuerFactory = Callable[..., TokenIssuer]
#: ``hostile_registry``'s type: keyword options of :class:`HostileRegistry` → a running one.
HostileFactory = Callable[..., HostileRegistry]
#: ``image_builder``'s type: keyword options of :func:`build_image` → the built image.
ImageBuilder = Callable[..., BuiltImage]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``integration`` marker, for projects that load the plugin without it."""
    config.addinivalue_line(
        "markers", "integration: needs the real registry, skopeo or umoci (started by fixtures)"
    )


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A plain (no auth) registry shared by the whole session."""
    server = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerDaemon]:
    """A private dockerd (own root, exec root and socket) shared by the whole session."""
    daemon = start_dockerd(tmp_path_factory.mktemp("dockerd"))
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the session registry, empty of faults."""
    with FaultProxy(registry.url) as p:
        yield p


@pytest.fixture
def registry_factory(tmp_path: Path) -> Iterator[RegistryFactory]:
    """Start registries with any :func:`start_registry` options; all stop after the test."""
    servers: list[RegistryServer] = []

    def start(**options: Any) -> RegistryServer:
        server = start_registry(tmp_path / f"registry-{len(servers)}", **options)
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def token_issuer_factory(tmp_path: Path) -> Iterator[TokenIssuerFactory]:
    """Start token issuers with any :class:`TokenIssuer` options; all stop after the test."""
    issuers: list[TokenIssuer] = []

    def start(**options: Any) -> TokenIssuer:
        issuer = TokenIssuer(tmp_path / f"token-issuer-{len(issuers)}", **options).start()
        issuers.append(issuer)
        return issuer

    try:
        yield start
    finally:
        for issuer in issuers:
            issuer.stop()


@pytest.fixture
def hostile_registry() -> Iterator[HostileFactory]:
    """Start hostile registries with any :class:`HostileRegistry` options; all stop after."""
    servers: list[HostileRegistry] = []

    def start(**options: Any) -> HostileRegistry:
        server = HostileRegistry(**options)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


def _cache_key(options: dict[str, Any]) -> str:
    normal = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in options.items()}
    return repr(sorted(normal.items()))


@pytest.fixture(scope="session")
def image_builder(tmp_path_factory: pytest.TempPathFactory) -> ImageBuilder:
    """Build images with :func:`build_image` options, once per session per set of options."""
    root = tmp_path_factory.mktemp("images")
    cache: dict[str, BuiltImage] = {}

    def build(**options: Any) -> BuiltImage:
        key = _cache_key(options)
        if key not in cache:
            cache[key] = build_image(root / f"image-{len(cache)}", **options)
        return cache[key]

    return build
