"""Run one command as a measured child process: wall seconds, CPU seconds and its own peak RSS.

Peak RSS and CPU time come from GNU ``/usr/bin/time -f "%M %U %S"``, which forks the command
from its own small process. Both Python-side ways are wrong here: ``getrusage(RUSAGE_CHILDREN)``
keeps the maximum over every child ever reaped, so a delta of it means nothing once an earlier
child was larger; and even ``os.wait4`` on the exact child reports at least the *parent's* RSS,
because Linux carries the pre-exec (forked or vforked) image's high-water mark across exec — a
child of this 300 MB harness would "peak" at 300 MB while running ``true``. Measured: wait4
303888 KiB vs time 1008 KiB for ``true``. Wall seconds are taken here around the whole run.
Output goes to a log file, never to a pipe, so a chatty child cannot block on a full pipe.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lorry.errors import LorryError

__all__ = ["BenchmarkError", "Run", "clean_env", "run_checked", "run_measured"]

_LOG_TAIL = 3000
#: GNU time, which measures the command's own peak RSS and CPU time (see the module docstring).
TIME_BINARY = os.environ.get("LORRY_BENCH_TIME_BINARY", "/usr/bin/time")


class BenchmarkError(LorryError):
    """A benchmarked or set-up command failed; the message holds the command and its log tail."""


@dataclass(frozen=True)
class Run:
    """One measured process: wall-clock seconds, user+system CPU seconds, peak RSS in bytes."""

    seconds: float
    cpu_seconds: float
    max_rss: int


def clean_env(home: Path) -> dict[str, str]:
    """An environment with a private HOME: no user credentials, mirrors or config leak in.

    The same for lorry and skopeo, so neither reads a config the other does not: an empty
    containers auth file and registries.conf (as :mod:`lorry.testing.skopeo` does) and XDG
    directories inside ``home``.
    """
    home.mkdir(parents=True, exist_ok=True)
    auth = home / "auth.json"
    auth.write_text('{"auths": {}}\n')
    registries = home / "registries.conf"
    registries.write_text("")
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_RUNTIME_DIR": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "REGISTRY_AUTH_FILE": str(auth),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "LANG": "C.UTF-8",
    }


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-_LOG_TAIL:]
    except OSError:
        return "(no log)"


def run_measured(
    cmd: Sequence[str], *, env: dict[str, str], log: Path, timeout: float = 1800.0
) -> Run:
    """Run ``cmd`` to completion with stdout+stderr appended to ``log``; measure it.

    Raises :class:`BenchmarkError` (with the log's tail) when it exits non-zero or is killed
    after ``timeout`` seconds.
    """
    timed_out = threading.Event()
    usage_file = log.with_name(log.name + ".rusage")
    timed = [TIME_BINARY, "-f", "%M %U %S", "-o", str(usage_file), *cmd]
    with log.open("ab") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            timed,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

        def kill() -> None:
            timed_out.set()
            os.killpg(proc.pid, signal.SIGKILL)  # time and the command it runs

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            proc.wait()
        except BaseException:  # interrupted: take the command down with us
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            timer.cancel()
        seconds = time.perf_counter() - start
    what = " ".join(cmd)
    if timed_out.is_set():
        raise BenchmarkError(f"{what}: killed after {timeout:.0f} s; log tail:\n{_tail(log)}")
    if proc.returncode != 0:
        raise BenchmarkError(f"{what}: exit {proc.returncode}; log tail:\n{_tail(log)}")
    return _parse_usage(usage_file, seconds, what)


def _parse_usage(path: Path, seconds: float, what: str) -> Run:
    """Read ``%M %U %S`` (KiB, user s, system s), the last line GNU time wrote to ``path``."""
    try:
        max_rss_kib, user, system = path.read_text().split("\n")[-2].split()
        return Run(seconds, float(user) + float(system), int(max_rss_kib) * 1024)
    except (OSError, ValueError, IndexError) as err:
        raise BenchmarkError(f"{what}: cannot read its resource usage from {path}") from err
    finally:
        path.unlink(missing_ok=True)


def run_checked(cmd: Sequence[str], *, env: dict[str, str], log: Path) -> bytes:
    """Run an untimed set-up or check command; return its stdout or raise BenchmarkError."""
    proc = subprocess.run(list(cmd), env=env, capture_output=True, check=False, timeout=600)
    with log.open("ab") as out:
        out.write(proc.stderr)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace")[-_LOG_TAIL:]
        raise BenchmarkError(f"{' '.join(cmd)}: exit {proc.returncode}: {stderr}")
    return proc.stdout
