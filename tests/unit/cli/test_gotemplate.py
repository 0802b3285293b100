"""The --format subset, checked against examples from docker's documentation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lorry.cli.gotemplate import align, parse_format
from lorry.cli.humanize import human_duration, human_size, since
from lorry.errors import InvalidInputError

IMAGE = {
    "ID": "77af4d6b9913",
    "Repository": "<none>",
    "Tag": "<none>",
    "Digest": "sha256:" + "ab" * 32,
    "CreatedSince": "19 hours ago",
    "Size": "1.089GB",
}
FIELDS = list(IMAGE)
HEADERS = {
    "ID": "IMAGE ID",
    "Repository": "REPOSITORY",
    "Tag": "TAG",
    "Digest": "DIGEST",
    "CreatedSince": "CREATED",
    "Size": "SIZE",
}


def test_docker_images_format_id_and_repository() -> None:
    # docs.docker.com "docker image ls": --format "{{.ID}}: {{.Repository}}"
    t = parse_format("{{.ID}}: {{.Repository}}", FIELDS)
    assert not t.table and t.render(IMAGE) == "77af4d6b9913: <none>"


def test_docker_images_format_table_aligns_like_tabwriter() -> None:
    # --format "table {{.ID}}\t{{.Repository}}\t{{.Tag}}" (\t typed as two characters)
    t = parse_format("table {{.ID}}\\t{{.Repository}}\\t{{.Tag}}", FIELDS)
    assert t.table
    lines = align([t.render(HEADERS), t.render(IMAGE), t.render({**IMAGE, "ID": "x"})])
    assert lines == [
        "IMAGE ID       REPOSITORY   TAG",
        "77af4d6b9913   <none>       <none>",
        "x              <none>       <none>",
    ]


def test_json_of_the_object_and_of_a_field() -> None:
    assert parse_format("{{json .}}", FIELDS).render({"ID": "a", "Tag": "b"}) == (
        '{"ID":"a","Tag":"b"}'
    )
    # docker inspect --format='{{json .Config}}'
    doc = {"Config": {"Env": ["PATH=/bin"], "Labels": None}}
    assert parse_format("{{json .Config}}", ["Config"]).render(doc) == (
        '{"Env":["PATH=/bin"],"Labels":null}'
    )
    assert parse_format("{{.Config.Env | json}}", ["Config"]).render(doc) == '["PATH=/bin"]'


def test_functions_and_pipelines() -> None:
    # docs.docker.com "Format command and log output": join, lower, upper, title, truncate, pad
    doc = {"Args": ["a", "b"], "Name": "myImage", "Os": "linux", "Architecture": "amd64"}
    fields = list(doc)
    assert parse_format('{{join .Args " , "}}', fields).render(doc) == "a , b"
    assert parse_format("{{upper .Name}} {{lower .Name}}", fields).render(doc) == "MYIMAGE myimage"
    assert parse_format("{{title .Os}}", fields).render(doc) == "Linux"
    assert (
        parse_format("{{truncate .Name 2}}|{{pad .Os 1 2}}|", fields).render(doc) == "my| linux  |"
    )
    assert parse_format("{{.Name | upper}}", fields).render(doc) == "MYIMAGE"
    assert parse_format("{{.Os}}/{{.Architecture}}", fields).render(doc) == "linux/amd64"
    assert parse_format("{{index .Args 1}} {{len .Args}}", fields).render(doc) == "b 2"
    assert parse_format("{{println .Name}}", fields).render(doc) == "myImage\n"
    assert parse_format('{{ "lit" }}-{{ 3 }}', fields).render(doc) == "lit-3"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("{{.Nope}}", "unknown field .Nope"),
        ("{{range .Args}}x{{end}}", "unknown function 'range'"),
        ("{{upper}}", "upper takes 1 argument(s), not 0"),
        ("{{.ID", "unmatched"),
        ("{{.ID | .Tag}}", ".Tag is not a function"),
        ("{{ @ }}", "cannot read '@'"),
    ],
)
def test_bad_templates_are_one_clear_error(text: str, said: str) -> None:
    with pytest.raises(InvalidInputError, match="--format") as err:
        parse_format(text, FIELDS)
    assert said in str(err.value) and "\n" not in str(err.value)


def test_sizes_and_ages_as_docker_prints_them() -> None:
    assert [human_size(n) for n in (0, 999, 1000, 7_800_000, 123_456_789, 1_234_567_890)] == [
        "0B",
        "999B",
        "1kB",
        "7.8MB",
        "123MB",
        "1.23GB",
    ]
    assert [human_duration(s) for s in (0.4, 1, 59, 60, 119, 3599, 3600, 5400, 86400 * 3)] == [
        "Less than a second",
        "1 second",
        "59 seconds",
        "About a minute",
        "About a minute",
        "59 minutes",
        "About an hour",
        "2 hours",
        "3 days",
    ]
    assert human_duration(86400 * 20) == "2 weeks" and human_duration(86400 * 90) == "3 months"
    now = datetime(2026, 12, 4, tzinfo=UTC)
    assert since("2024-11-01T00:00:00Z", now) == "2 years ago"
    assert since(None, now) == "N/A" and since("garbage", now) == "N/A"
