"""Tests of the progress renderers against the shapes of xfer-spec §5."""

from __future__ import annotations

import io
import json

from lorry.cli.render import (
    JsonRenderer,
    PlainRenderer,
    TtyRenderer,
    human_size,
    json_message,
    make_renderer,
    progress_bar,
)
from lorry.progress import ProgressEvent

LAYER = "e7d92cdc71fe"
EVENTS = [
    ProgressEvent(id="latest", status="Pulling from library/busybox", is_message=True),
    ProgressEvent(id=LAYER, status="Pulling fs layer"),
    ProgressEvent(id=LAYER, status="Downloading", current=32768, total=2811478),
    ProgressEvent(id=LAYER, status="Downloading", current=2811478, total=2811478),
    ProgressEvent(id=LAYER, status="Verifying Checksum"),
    ProgressEvent(id=LAYER, status="Download complete"),
    ProgressEvent(id=LAYER, status="Pull complete"),
    ProgressEvent(status="Digest: sha256:abc", is_message=True),
]


def test_human_size_matches_docker() -> None:
    assert human_size(32768) == "32.77kB"
    assert human_size(2811478) == "2.811MB"
    assert human_size(999999) == "1000kB"
    assert human_size(0) == "0B"


def test_progress_bar_shape() -> None:
    bar = progress_bar(32768, 2811478)
    assert bar == "[>" + " " * 50 + "]  32.77kB/2.811MB"
    full = progress_bar(2811478, 2811478)
    assert full.startswith("[" + "=" * 50 + ">]")
    assert progress_bar(0, 0) == ""


def test_json_messages() -> None:
    assert json_message(EVENTS[0]) == {"status": "Pulling from library/busybox", "id": "latest"}
    assert json_message(EVENTS[1]) == {
        "status": "Pulling fs layer",
        "progressDetail": {},
        "id": LAYER,
    }
    dl = json_message(EVENTS[2])
    assert dl["progressDetail"] == {"current": 32768, "total": 2811478}
    assert dl["progress"].endswith("32.77kB/2.811MB")
    assert json_message(ProgressEvent(error="boom")) == {
        "errorDetail": {"message": "boom"},
        "error": "boom",
    }


def test_json_renderer_one_object_per_line() -> None:
    out = io.StringIO()
    r = JsonRenderer(out)
    for ev in EVENTS:
        r.emit(ev)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(EVENTS)
    for line in lines:
        assert isinstance(json.loads(line), dict)


def test_plain_renderer_has_no_control_codes_and_folds_byte_updates() -> None:
    out = io.StringIO()
    r = PlainRenderer(out)
    for ev in EVENTS:
        r.emit(ev)
    text = out.getvalue()
    assert "\x1b" not in text and "\r" not in text
    assert text.splitlines() == [
        "latest: Pulling from library/busybox",
        f"{LAYER}: Pulling fs layer",
        f"{LAYER}: Downloading",
        f"{LAYER}: Verifying Checksum",
        f"{LAYER}: Download complete",
        f"{LAYER}: Pull complete",
        "Digest: sha256:abc",
    ]


def test_tty_renderer_redraws_in_place() -> None:
    out = io.StringIO()
    r = TtyRenderer(out, width=120)
    for ev in EVENTS[:4]:
        r.emit(ev)
    text = out.getvalue()
    assert "\x1b[1A" in text  # moved up to its own line to redraw
    assert "2.811MB/2.811MB" in text


def test_broken_output_is_tolerated() -> None:
    out = io.StringIO()
    r = make_renderer("plain", out)
    out.close()
    r.emit(EVENTS[0])
    assert r.closed
