"""Transport references as skopeo spells them: ``docker://REF``, ``oci:PATH[:REF]``,
``oci-archive:PATH[:REF]``, ``docker-archive:PATH[:REF]`` and ``lorry:REF`` (the local store).

A bare reference with no transport prefix names the local store, as ``lorry push`` and ``lorry
save`` take local images. Paths end at the first ``:`` (skopeo's rule), so ``REF`` may itself
hold colons (``docker-archive:out.tar:alpine:3.19``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from lorry.errors import InvalidInputError

__all__ = ["TRANSPORTS", "TransportName", "TransportRef", "parse_transport"]

TransportName = Literal["docker", "oci", "oci-archive", "docker-archive", "lorry"]

#: Every transport lorry knows, in the order messages list them.
TRANSPORTS: tuple[TransportName, ...] = ("docker", "oci", "oci-archive", "docker-archive", "lorry")
_PATH_TRANSPORTS: tuple[TransportName, ...] = ("oci", "oci-archive", "docker-archive")
#: skopeo's other transports: named so they are refused, not taken for a local image name.
_OTHER_TRANSPORTS = frozenset(
    {"dir", "containers-storage", "docker-daemon", "ostree", "sif", "tarball", "atomic"}
)
#: ``word:/path`` or ``word:./path`` is a transport (a tag never starts with / or .).
_WORD = re.compile(r"[a-z][a-z0-9-]*")


@dataclass(frozen=True)
class TransportRef:
    """A parsed transport reference: which transport, its path (file transports), its ref."""

    transport: TransportName
    #: The directory or file of ``oci``, ``oci-archive`` and ``docker-archive``; else "".
    path: str
    #: The image reference inside the medium (None: the only image there).
    ref: str | None
    #: The text as the user wrote it (for messages).
    text: str

    def __str__(self) -> str:
        return self.text


def parse_transport(text: str) -> TransportRef:
    """Parse ``text``; an unknown transport or an empty path is an InvalidInputError."""
    if text.startswith("docker://"):
        ref = text[len("docker://") :]
        if not ref:
            raise InvalidInputError(f"{text}: docker:// needs an image reference")
        return TransportRef("docker", "", ref, text)
    head, sep, rest = text.partition(":")
    if sep and head in _PATH_TRANSPORTS:
        path, _, ref = rest.partition(":")
        if not path:
            raise InvalidInputError(f"{text}: {head}: needs a path")
        return TransportRef(head, path, ref or None, text)
    if sep and head == "lorry":
        if not rest:
            raise InvalidInputError(f"{text}: lorry: needs an image reference")
        return TransportRef("lorry", "", rest, text)
    if sep and (head in _OTHER_TRANSPORTS or (_WORD.fullmatch(head) and rest[:1] in ("/", "."))):
        known = ", ".join(f"{t}:" for t in TRANSPORTS)
        raise InvalidInputError(f"{text}: unknown transport {head!r} (lorry knows {known})")
    return TransportRef("lorry", "", text, text)
