"""Descriptors: the typed, sized, digest-addressed pointers that manifests and indexes are made of.

One class serves both families. Docker's descriptors are OCI's with fewer fields and another key
order (``mediaType, size, digest``); :meth:`Descriptor.to_dict` writes either order, so a
document lorry builds looks like one its native tools would write.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import _json
from lorry.platform import Platform

__all__ = ["Descriptor", "check_media_type"]

# RFC 6838 type/subtype, as the image-spec's descriptor section requires.
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
)


def check_media_type(value: str, what: str) -> str:
    """Return ``value`` if it is a well-formed ``type/subtype``; raise naming ``what`` if not."""
    if not _MEDIA_TYPE.fullmatch(value):
        raise InvalidInputError(f"{what}: malformed media type {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Descriptor:
    """Media type + digest + size of some content, with the optional OCI extras.

    ``annotations`` must not be mutated (it is excluded from the hash). ``data`` is the OCI 1.1
    embedded content, already checked against ``digest`` and ``size``.
    """

    media_type: str
    digest: Digest
    size: int
    urls: tuple[str, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    platform: Platform | None = None
    artifact_type: str | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        check_media_type(self.media_type, "descriptor")
        if self.size < 0:
            raise InvalidInputError(f"descriptor {self.digest}: negative size {self.size}")

    @classmethod
    def from_dict(cls, d: Any, what: str = "descriptor") -> Descriptor:
        """Read and validate a descriptor JSON object; ``what`` names it in errors."""
        if not isinstance(d, dict):
            raise InvalidInputError(f"{what}: not a JSON object")
        media_type = check_media_type(_json.req_str(d, "mediaType", what), what)
        digest = _json.digest_field(d, "digest", what)
        size = _json.req_int(d, "size", what)
        if size < 0:
            raise InvalidInputError(f"{what}: negative size {size}")
        plat = _json.opt_object(d, "platform", what)
        artifact_type = _json.opt_str(d, "artifactType", what)
        if artifact_type is not None:
            check_media_type(artifact_type, f"{what}.artifactType")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            urls=_json.str_list(d, "urls", what),
            annotations=_json.str_map(d, what),
            platform=None if plat is None else Platform.from_dict(plat, f"{what}.platform"),
            artifact_type=artifact_type,
            data=_embedded(d, digest, size, what),
        )

    def to_dict(self, docker: bool = False) -> dict[str, Any]:
        """The JSON object: OCI key order, or Docker's (``mediaType, size, digest``)."""
        out: dict[str, Any] = {"mediaType": self.media_type}
        if docker:
            out.update(size=self.size, digest=str(self.digest))
        else:
            out.update(digest=str(self.digest), size=self.size)
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.data is not None and not docker:
            out["data"] = base64.b64encode(self.data).decode("ascii")
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        if self.artifact_type and not docker:
            out["artifactType"] = self.artifact_type
        return out

    def __str__(self) -> str:
        return f"{self.media_type} {self.digest} ({self.size} bytes)"


def _embedded(d: dict[str, Any], digest: Digest, size: int, what: str) -> bytes | None:
    """The ``data`` field decoded and verified (image-spec: MUST match digest and size)."""
    text = _json.opt_str(d, "data", what)
    if text is None:
        return None
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise InvalidInputError(f"{what}: field 'data' is not base64") from None
    if len(data) != size or Digest.of(data, digest.algorithm) != digest:
        raise InvalidInputError(f"{what}: embedded data does not match its digest and size")
    return data
