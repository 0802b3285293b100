"""A registry's words reach the terminal escaped (issue 16, item 6, via the hostile registry).

``lorry ls`` skips names that are not tags (``../../x``, escape sequences) with one warning, and
an error message carrying OSC/CSI sequences is printed with its control bytes as ``\\xNN``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_helpers import CONTROL, lorry, lorry_child

from lorry.testing.hostile import (
    CSI_RED,
    HOSTILE_TAGS,
    OSC_TITLE,
    Behaviour,
    ErrorReply,
    layered_image,
)
from lorry.testing.pytest_plugin import HostileFactory

pytestmark = pytest.mark.integration

NOT_FOUND = 3


def test_ls_prints_no_control_byte_and_no_path_trick(
    hostile_registry: HostileFactory, root: Path
) -> None:
    """In a child process, so stderr is what a terminal would get (logging included)."""
    reg = hostile_registry()
    reg.set_tags("app", HOSTILE_TAGS)
    got = lorry_child(["ls", f"{reg.host}/app"], root, timeout=60)
    assert got.code == 0, got.err
    assert got.out.splitlines() == ["good"]
    assert not CONTROL & set(got.out + got.err), repr(got.out + got.err)
    assert "../" not in got.out + got.err
    warnings = got.err.splitlines()
    bad = len(HOSTILE_TAGS) - 1
    assert len(warnings) == 1 and f"skipped {bad} names that are not valid tags" in warnings[0]


def test_an_error_message_with_escape_sequences_reaches_stderr_escaped(
    hostile_registry: HostileFactory, root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = hostile_registry()
    reg.add_image("app", "v1", layered_image(1))
    message = f"{OSC_TITLE}manifest {CSI_RED}gone"
    reg.behave(Behaviour("manifest", reply=ErrorReply(404, message, "MANIFEST_UNKNOWN")))
    got = lorry(["pull", f"{reg.host}/app:v1"], root, capsys)
    assert got.code == NOT_FOUND, got.err
    line = got.one_error()
    assert not CONTROL & set(got.out + got.err), repr(got.err)
    assert "\\x1b]0;owned by the registry\\x07manifest \\x1b[31mgone" in line, line
