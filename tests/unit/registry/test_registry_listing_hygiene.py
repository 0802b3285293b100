"""Names a registry lists are checked before anyone uses them (issue 16, item 6)."""

from __future__ import annotations

import pytest

from lorry.registry.tags import valid_repositories, valid_tags


def test_tags_that_are_not_tags_are_skipped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    listed = ["v1", "../../x", "\x1b]8;;http://evil\x07x", "latest", "a/b", "", "x" * 129]
    with caplog.at_level("WARNING"):
        assert valid_tags(listed, "listing tags of r/x") == ["v1", "latest"]
    assert [r.getMessage() for r in caplog.records] == [
        "listing tags of r/x: skipped 5 names that are not valid tags"
    ]


def test_a_clean_tag_list_warns_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert valid_tags(["1.0", "_x", "A-b.c"], "t") == ["1.0", "_x", "A-b.c"]
    assert not caplog.records


def test_repositories_that_are_not_paths_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    listed = ["library/alpine", "../etc", "a//b", "Upper", "x\x1b[2J", "ok/" + "n" * 260, "me/x"]
    with caplog.at_level("WARNING"):
        assert valid_repositories(listed, "catalog") == ["library/alpine", "me/x"]
    assert len(caplog.records) == 1 and "skipped 5" in caplog.records[0].getMessage()
