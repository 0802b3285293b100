"""The README's run command, ``./scripts/try``, works offline on a clean HOME (issue 15 §5).

Run in a network namespace with only loopback (``unshare -rn``) where the kernel allows one, so
any attempt to reach beyond 127.0.0.1 fails the run; the virtualenv is this test run's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _loopback_only() -> list[str]:
    """A command prefix that runs its command with loopback as the only network, if possible."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare is None or not Path(ip).exists():
        return []
    probe = subprocess.run(
        [unshare, "-rn", "sh", "-c", f"{ip} link set lo up"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return []
    return [unshare, "-rn", "sh", "-c", f'{ip} link set lo up && exec "$@"', "sh"]


def test_the_try_script_runs_offline_on_a_clean_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LORRY_VENV": sys.prefix,  # this run's virtualenv: nothing to download
        "TMPDIR": str(tmp_path),
    }
    prefix = _loopback_only()
    if prefix:  # prove it: nothing beyond loopback answers in there
        reach = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-c",
                "import socket,sys; s=socket.socket(); s.settimeout(2); "
                "sys.exit(s.connect_ex(('192.0.2.1', 443)) == 0)",
            ],
            check=False,
        )
        assert reach.returncode == 0
    done = subprocess.run(
        [*prefix, str(ROOT / "scripts" / "try"), "--keep", str(tmp_path / "kept")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for shown in (
        "$ lorry pull",
        "Status: Downloaded newer image",
        "$ lorry images",
        "$ lorry copy",
        "$ lorry unpack",
        "0 problems",
        "registry stopped",
    ):
        assert shown in done.stdout + done.stderr, done.stdout
    assert (tmp_path / "kept" / "layout" / "index.json").is_file()
    assert any((tmp_path / "kept" / "rootfs").iterdir())
    assert not list(tmp_path.glob("lorry-try-*")), "the demo's work directory is removed"
