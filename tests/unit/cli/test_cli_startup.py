"""The command line loads only the command it runs: a fast ``--version``, light store commands."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

from lorry.cli.app import COMMAND_MODULES, cli

_PROBE = """
import sys
from lorry.cli import run
code = run(sys.argv[1:])
prefixes = ("anyio", "lorry.registry", "lorry.transfer", "lorry.ops", "lorry.transports")
heavy = sorted(m for m in sys.modules if m.startswith(prefixes))
print(repr((code, heavy)))
"""


def _loaded(*argv: str) -> tuple[int, list[str]]:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    ).stdout
    code, heavy = ast.literal_eval(out.strip().splitlines()[-1])
    return code, heavy


def test_the_command_table_names_every_command_its_modules_define() -> None:
    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(module)
    assert set(cli.commands) == set(COMMAND_MODULES)
    for name, module in COMMAND_MODULES.items():
        assert cli.commands[name].callback is not None
        assert cli.commands[name].callback.__module__ == module


def test_version_and_store_commands_import_no_transfer_registry_or_anyio(tmp_path: Path) -> None:
    assert _loaded("--version") == (0, [])
    code, heavy = _loaded("--root", str(tmp_path / "store"), "images", "--format", "json")
    assert (code, heavy) == (0, [])


def test_unpack_of_a_stored_image_imports_no_copy_engine(tmp_path: Path) -> None:
    from lorry.testing.builder import build_image

    built = build_image(tmp_path / "img", layers=1, seed=3)
    root = str(tmp_path / "store")
    assert run_lorry("--root", root, "copy", "-q", f"oci:{built.layout}:latest", "lorry:u/x:1") == 0
    code, heavy = _loaded("--root", root, "unpack", "-q", "u/x:1", str(tmp_path / "t"))
    assert code == 0 and (tmp_path / "t").is_dir()
    engine = ("anyio", "lorry.registry", "lorry.ops.copy", "lorry.transfer.manager")
    assert [m for m in heavy if m.startswith(engine)] == []


def run_lorry(*argv: str) -> int:
    """``python -m lorry`` in a child process; its exit code."""
    return subprocess.run([sys.executable, "-m", "lorry", *argv], check=False).returncode


_GC_PROBE = """
import gc, sys
from lorry.cli import heap, run
before = gc.isenabled()
if sys.argv[1] == "console":
    heap.hold_while_loading()
code = run(sys.argv[2:])
print(repr((before, code, gc.isenabled(), gc.get_freeze_count() > 0)))
"""


def _collector(mode: str, *argv: str) -> tuple[bool, int, bool, bool]:
    out = subprocess.run(
        [sys.executable, "-c", _GC_PROBE, mode, *argv], capture_output=True, text=True, check=True
    ).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_the_console_script_collects_again_once_the_command_is_loaded(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    assert _collector("console", "--root", root, "images", "-q") == (True, 0, True, True)


def test_a_library_caller_s_collector_is_left_alone(tmp_path: Path) -> None:
    root = str(tmp_path / "store")
    assert _collector("library", "--root", root, "images", "-q") == (True, 0, True, False)
