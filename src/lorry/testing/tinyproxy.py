"""A real forward proxy (Debian ``tinyproxy``) on loopback, with its own config and log."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from lorry.errors import UnavailableError

__all__ = ["Tinyproxy", "start_tinyproxy"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tinyproxy:
    """A running tinyproxy; :attr:`url` to use it, :meth:`log` to read what it saw."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, logfile: Path) -> None:
        self.process = process
        self.port = port
        self.logfile = logfile
        self.url = f"http://127.0.0.1:{port}"

    def log(self) -> str:
        """The proxy's log so far (empty before its first line)."""
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def stop(self) -> None:
        """Stop the proxy (the one process this helper started)."""
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_tinyproxy(workdir: Path, *, connect_ports: Sequence[int] = ()) -> Tinyproxy:
    """Start tinyproxy in the foreground on 127.0.0.1; ``connect_ports`` limits CONNECT."""
    exe = shutil.which("tinyproxy") or "/usr/bin/tinyproxy"
    if not Path(exe).exists():
        raise UnavailableError("tinyproxy is not installed (apt-get install tinyproxy)")
    port = _free_port()
    logfile = workdir / "tinyproxy.log"
    lines = [
        f"Port {port}",
        "Listen 127.0.0.1",
        "Timeout 60",
        f'LogFile "{logfile}"',
        "LogLevel Connect",
        "MaxClients 20",
        "Allow 127.0.0.1",
        *(f"ConnectPort {p}" for p in connect_ports),
    ]
    conf = workdir / "tinyproxy.conf"
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [exe, "-d", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise UnavailableError(f"tinyproxy exited with {proc.returncode}; config {conf}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Tinyproxy(proc, port, logfile)
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise UnavailableError(f"tinyproxy did not listen on 127.0.0.1:{port}")
