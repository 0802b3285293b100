"""Transport references are parsed as skopeo spells them; unknown ones are refused by name."""

from __future__ import annotations

import pytest

from lorry.errors import InvalidInputError
from lorry.transports import TransportRef, parse_transport


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("docker://alpine:3.19", ("docker", "", "alpine:3.19")),
        (
            "docker://localhost:5000/app@sha256:" + "a" * 64,
            ("docker", "", "localhost:5000/app@sha256:" + "a" * 64),
        ),
        ("oci:/tmp/layout", ("oci", "/tmp/layout", None)),
        ("oci:/tmp/layout:v1", ("oci", "/tmp/layout", "v1")),
        ("oci-archive:out.tar:v1", ("oci-archive", "out.tar", "v1")),
        ("docker-archive:out.tar:alpine:3.19", ("docker-archive", "out.tar", "alpine:3.19")),
        ("lorry:alpine", ("lorry", "", "alpine")),
        ("alpine", ("lorry", "", "alpine")),
        ("alpine:3.19", ("lorry", "", "alpine:3.19")),
        ("localhost:5000/app:v1", ("lorry", "", "localhost:5000/app:v1")),
    ],
)
def test_transport_references_parse_as_skopeo_spells_them(
    text: str, want: tuple[str, str, str | None]
) -> None:
    got = parse_transport(text)
    assert isinstance(got, TransportRef)
    assert (got.transport, got.path, got.ref) == want
    assert str(got) == text


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("dir:/tmp/x", "unknown transport 'dir'"),
        ("containers-storage:alpine", "unknown transport 'containers-storage'"),
        ("floppy:./disk", "unknown transport 'floppy'"),
        ("docker://", "needs an image reference"),
        ("oci:", "needs a path"),
        ("lorry:", "needs an image reference"),
    ],
)
def test_bad_transport_references_are_one_line_errors_naming_the_text(
    text: str, words: str
) -> None:
    with pytest.raises(InvalidInputError) as err:
        parse_transport(text)
    msg = str(err.value)
    assert text in msg and words in msg and "\n" not in msg
