"""A real ``dockerd`` as a test peer: private root, exec root and socket, no systemd, no network.

:func:`start_dockerd` runs Debian's ``dockerd`` with everything under one work directory
(``--data-root``, ``--exec-root``, ``-H unix://…``, ``--pidfile``) and without touching the
host's network (``--iptables=false --ip6tables=false --bridge=none``; ``vfs`` storage, which
needs no kernel overlay support), waits until the API answers, and is stopped by its PID.
:meth:`DockerDaemon.docker` runs the docker CLI against that socket only, with a private
``DOCKER_CONFIG``, so the user's credentials and contexts never leak into a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from lorry.errors import LorryError, UnavailableError
from lorry.testing._process import stop_process

__all__ = ["DOCKERD_BINARY", "DOCKER_BINARY", "DockerDaemon", "DockerError", "start_dockerd"]

#: The daemon and CLI binaries (Debian ``docker.io``).
DOCKERD_BINARY = os.environ.get("LORRY_TEST_DOCKERD_BINARY", "/usr/sbin/dockerd")
DOCKER_BINARY = os.environ.get("LORRY_TEST_DOCKER_BINARY", "/usr/bin/docker")
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 20.0
_CLI_TIMEOUT = 600.0


class DockerError(LorryError):
    """The docker CLI exited non-zero; the message holds the command and its stderr."""


class DockerDaemon:
    """A running private ``dockerd``; stop it with :meth:`stop` (or use it as a context)."""

    def __init__(self, work: Path, process: subprocess.Popen[bytes]) -> None:
        self.work = work
        self.process = process
        self.socket = work / "docker.sock"
        self.log = work / "dockerd.log"

    @property
    def host(self) -> str:
        """The ``DOCKER_HOST`` value of this daemon."""
        return f"unix://{self.socket}"

    def docker(
        self, args: Sequence[str], *, stdin: bytes | None = None, timeout: float = _CLI_TIMEOUT
    ) -> bytes:
        """Run ``docker ARGS`` against this daemon; return stdout or raise :class:`DockerError`."""
        config = self.work / "cli-config"
        config.mkdir(exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DOCKER_CONFIG": str(config)}
        cmd = [DOCKER_BINARY, "-H", self.host, *args]
        done = subprocess.run(
            cmd, input=stdin, capture_output=True, env=env, timeout=timeout, check=False
        )
        if done.returncode != 0:
            err = done.stderr.decode(errors="replace").strip()
            raise DockerError(f"{' '.join(cmd)} exited {done.returncode}: {err}")
        return done.stdout

    def stop(self) -> None:
        """Stop the daemon by its PID: SIGTERM, then SIGKILL if it does not exit in time."""
        stop_process(self.process, _STOP_TIMEOUT)

    def __enter__(self) -> DockerDaemon:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_dockerd(work: Path) -> DockerDaemon:
    """Start a private ``dockerd`` under ``work`` and wait until its API answers."""
    if shutil.which(DOCKERD_BINARY) is None:
        raise UnavailableError(f"{DOCKERD_BINARY} not found: install Debian package docker.io")
    work.mkdir(parents=True, exist_ok=True)
    cmd = [
        DOCKERD_BINARY,
        "--data-root", str(work / "data"),
        "--exec-root", str(work / "exec"),
        "-H", f"unix://{work / 'docker.sock'}",
        "--pidfile", str(work / "dockerd.pid"),
        "--iptables=false", "--ip6tables=false", "--bridge=none",
        "--storage-driver=vfs",
    ]  # fmt: skip
    with open(work / "dockerd.log", "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    daemon = DockerDaemon(work, process)
    deadline = time.monotonic() + _START_TIMEOUT
    while True:
        if process.poll() is not None:
            tail = daemon.log.read_text(errors="replace")[-2000:]
            raise UnavailableError(f"dockerd exited {process.returncode} at start: {tail}")
        if daemon.socket.exists():
            try:
                daemon.docker(["version", "--format", "{{.Server.Version}}"], timeout=10)
                return daemon
            except (DockerError, subprocess.TimeoutExpired):
                pass
        if time.monotonic() > deadline:
            daemon.stop()
            raise UnavailableError(f"dockerd did not answer within {_START_TIMEOUT:.0f} s")
        time.sleep(0.2)
