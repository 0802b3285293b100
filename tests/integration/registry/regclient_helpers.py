"""Helpers for the registry-client integration tests (imported by the test modules)."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.registry.client import RegistryClient
from lorry.testing.faultproxy import FaultProxy
from lorry.testing.registry import RegistryServer


def random_blob(size: int, seed: int = 1) -> tuple[bytes, Digest]:
    """Deterministic random bytes and their digest."""
    data = random.Random(seed).randbytes(size)
    return data, Digest.of(data)


def push_blob(client: RegistryClient, data: bytes) -> Digest:
    """Upload ``data`` monolithically; return its digest."""
    digest = Digest.of(data)
    client.upload_blob(client.start_upload(), io.BytesIO(data), digest, len(data))
    return digest


def put_empty_image(client: RegistryClient, tag: str, annotations: bytes = b"") -> bytes:
    """Push an OCI manifest with the config ``{}`` and no layers as ``tag``; return its bytes.

    ``annotations`` is a raw JSON object that goes in verbatim (so tests can aim at a byte).
    """
    raw = (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"'
        + str(push_blob(client, b"{}")).encode()
        + b'","size":2},"layers":[]'
        + (b',"annotations":' + annotations if annotations else b"")
        + b"}"
    )
    client.put_manifest(tag, raw, mt.OCI_MANIFEST)
    return raw


def read_all(client: RegistryClient, digest: Digest, size: int) -> bytes:
    """The whole blob, verified."""
    with client.open_blob(digest, size=size, verify=True) as reader:
        return b"".join(reader)


def run_lorry(
    *args: str, env: Mapping[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """Run the real command line in a child process (its logging set up from scratch)."""
    return subprocess.run(
        [sys.executable, "-m", "lorry", *args],
        input=stdin,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def proxied_client(
    registry: RegistryServer, proxy: FaultProxy, make_session: Any, repo: str, data: bytes
) -> RegistryClient:
    """A client that reaches ``repo`` through ``proxy``, once ``data`` is stored there."""
    direct = make_session().client(registry.host, repo)
    if direct.stat_blob(Digest.of(data)) is None:
        push_blob(direct, data)
    return make_session(timeout=5.0).client(proxy.host, repo)
