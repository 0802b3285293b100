"""Docker image manifest v2, schema 1: unsigned and signed (JWS "prettyjws") documents.

A signed schema1 manifest is its payload with a ``signatures`` array spliced in before the
closing brace. Each signature's protected header says how to cut it back out: keep the first
``formatLength`` bytes, append the base64url ``formatTail``. Docker's manifest digest is the
sha256 of that payload, not of the bytes received, so :attr:`Schema1Manifest.digest` is too,
and the fields are read from the payload (as docker does) rather than from the signed bytes.
Signatures are not verified cryptographically: docker never did on pull either.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, replace
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import _detect, _json
from lorry.oci._json import parse_json

__all__ = ["Schema1Manifest", "jws_payload"]

_V1_ID = re.compile(r"[a-f0-9]{64}")


def _b64url(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInputError(f"{what}: not base64url") from None


def jws_payload(raw: bytes, signatures: list[Any]) -> bytes:
    """The signed payload of a prettyjws document: the manifest without its signatures.

    Every signature must describe the same payload, and the document must end with the tail
    the headers name, so the payload is a true cut of the bytes received.
    """
    what = "schema1 manifest signatures"
    if not signatures:
        raise InvalidInputError(f"{what}: empty")
    payloads = {_one_payload(raw, sig, f"{what}[{i}]") for i, sig in enumerate(signatures)}
    if len(payloads) != 1:
        raise InvalidInputError(f"{what}: signatures disagree about the payload")
    return payloads.pop()


def _one_payload(raw: bytes, sig: Any, what: str) -> bytes:
    """The payload one signature's protected header describes."""
    if not isinstance(sig, dict):
        raise InvalidInputError(f"{what}: not a JSON object")
    _json.req_str(sig, "signature", what)
    protected = _b64url(_json.req_str(sig, "protected", what), f"{what}.protected")
    header = _json.load_object(protected, f"{what} protected header", len(raw))
    length = _json.req_int(header, "formatLength", f"{what} protected header")
    tail = _b64url(_json.req_str(header, "formatTail", f"{what} protected header"), what)
    if not 0 <= length <= len(raw) or not raw.endswith(tail):
        raise InvalidInputError(f"{what}: formatLength/formatTail do not fit the document")
    return raw[:length] + tail


@dataclass(frozen=True, slots=True)
class Schema1Manifest:
    """A schema1 manifest; ``fs_layers`` and ``history`` are top (newest) first, as stored.

    ``history`` holds the ``v1Compatibility`` JSON strings. ``payload`` is what the digest is
    computed over: the raw bytes when unsigned, the JWS payload when signed.
    """

    media_type: str
    name: str
    tag: str
    architecture: str
    fs_layers: tuple[Digest, ...]
    history: tuple[str, ...]
    raw: bytes = field(repr=False)
    payload: bytes = field(repr=False)
    digest: Digest

    @property
    def signed(self) -> bool:
        """Whether the document carried JWS signatures."""
        return self.media_type == mt.DOCKER_MANIFEST_V1_SIGNED

    @classmethod
    def parse(cls, raw: bytes, content_type: str | None = None) -> Schema1Manifest:
        """Parse and validate a schema1 document (signed or not)."""
        obj, media_type = _detect.load(raw, content_type, "schema1 manifest")
        if media_type not in (mt.DOCKER_MANIFEST_V1, mt.DOCKER_MANIFEST_V1_SIGNED):
            raise InvalidInputError(f"schema1 manifest: expected schema1, got {media_type}")
        return cls.from_object(obj, raw, media_type)

    @classmethod
    def from_object(cls, obj: dict[str, Any], raw: bytes, media_type: str) -> Schema1Manifest:
        """Build from an already decoded and type-checked document (see ``parse_manifest``)."""
        what = "schema1 manifest"
        payload = raw
        if media_type == mt.DOCKER_MANIFEST_V1_SIGNED:
            payload = jws_payload(raw, _json.opt_list(obj, "signatures", what, required=True))
            obj = _json.load_object(payload, f"{what} payload", len(payload))
            if "signatures" in obj:
                raise InvalidInputError(f"{what}: the signed payload still has signatures")
        if _json.req_int(obj, "schemaVersion", what) != 1:
            raise InvalidInputError(f"{what}: unsupported schema version in the payload")
        layers = _json.opt_list(obj, "fsLayers", what, required=True)
        history = _json.opt_list(obj, "history", what, required=True)
        if len(layers) != len(history):
            raise InvalidInputError(f"{what}: length of history not equal to number of layers")
        if not layers:
            raise InvalidInputError(f"{what}: no FSLayers in manifest")
        return cls(
            media_type=media_type,
            name=_json.req_str(obj, "name", what),
            tag=_json.opt_str(obj, "tag", what) or "",
            architecture=_json.opt_str(obj, "architecture", what) or "",
            fs_layers=tuple(_layer(d, f"{what} fsLayers[{i}]") for i, d in enumerate(layers)),
            history=tuple(_v1(d, f"{what} history[{i}]") for i, d in enumerate(history)),
            raw=raw,
            payload=payload,
            digest=Digest.of(payload),
        )

    def fix_layers(self) -> Schema1Manifest:
        """Drop repeated adjacent layers and check the parent chain (moby's fixManifestLayers).

        Raises :class:`InvalidInputError` on a bad v1 ID, a base layer with a parent, an ID
        that appears twice apart, or a parent that is not the layer below. Idempotent.
        """
        images = [_v1_image(h, i) for i, h in enumerate(self.history)]
        if images[-1][1]:
            raise InvalidInputError("Invalid parent ID in the base layer of the image.")
        seen: set[str] = set()
        last = ""
        for image_id, _ in images:
            if image_id != last and image_id in seen:
                raise InvalidInputError(f"ID {image_id} appears multiple times in manifest")
            seen.add(image_id)
            last = image_id
        keep = [len(images) - 1]
        for i in range(len(images) - 2, -1, -1):
            if images[i][0] == images[i + 1][0]:
                continue
            if images[i][1] != images[i + 1][0]:
                raise InvalidInputError(
                    f"Invalid parent ID. Expected {images[i + 1][0]}, got {images[i][1]}."
                )
            keep.append(i)
        keep.reverse()
        return replace(self, fs_layers=tuple(self.fs_layers[i] for i in keep),
                       history=tuple(self.history[i] for i in keep))  # fmt: skip

    def matches_digest(self, expected: Digest) -> bool:
        """Whether the payload hashes to ``expected`` (in its own algorithm)."""
        return Digest.of(self.payload, expected.algorithm) == expected


def _layer(d: Any, what: str) -> Digest:
    if not isinstance(d, dict):
        raise InvalidInputError(f"{what}: not a JSON object")
    return _json.digest_field(d, "blobSum", what)


def _v1(d: Any, what: str) -> str:
    if not isinstance(d, dict):
        raise InvalidInputError(f"{what}: not a JSON object")
    return _json.req_str(d, "v1Compatibility", what)


def _v1_image(text: str, index: int) -> tuple[str, str]:
    """``(id, parent)`` of one v1Compatibility entry, the ID checked as moby's ValidateID."""
    what = f"schema1 manifest history[{index}].v1Compatibility"
    try:
        image = parse_json(text)
    except ValueError as e:  # JSONDecodeError, or nested too deep
        raise InvalidInputError(f"{what}: not JSON: {getattr(e, 'msg', e)}") from None
    if not isinstance(image, dict):
        raise InvalidInputError(f"{what}: not a JSON object")
    image_id = _json.opt_str(image, "id", what) or ""
    if not _V1_ID.fullmatch(image_id):
        raise InvalidInputError(f"{what}: image ID {image_id!r} is invalid")
    return image_id, _json.opt_str(image, "parent", what) or ""
