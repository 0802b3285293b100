"""Helpers for the registry-client integration tests (imported by the test modules)."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Mapping

from lorry.digest import Digest
from lorry.registry.client import RegistryClient


def random_blob(size: int, seed: int = 1) -> tuple[bytes, Digest]:
    """Deterministic random bytes and their digest."""
    data = random.Random(seed).randbytes(size)
    return data, Digest.of(data)


def push_blob(client: RegistryClient, data: bytes) -> Digest:
    """Upload ``data`` monolithically; return its digest."""
    digest = Digest.of(data)
    client.upload_blob(client.start_upload(), io.BytesIO(data), digest, len(data))
    return digest


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
