"""Image manifests: Docker schema2 and OCI, parsed from their exact bytes or built anew."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import _detect, _json
from lorry.oci.descriptor import Descriptor, check_media_type
from lorry.platform import Platform

__all__ = ["Manifest"]

_TYPES = (mt.DOCKER_MANIFEST_V2, mt.OCI_MANIFEST)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A single-image manifest (Docker schema2 or OCI): a config descriptor and its layers.

    ``raw`` is the document exactly as received or built and ``digest`` is the sha256 of it;
    nothing is ever re-serialised. ``layers`` are bottom first.
    """

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    raw: bytes = field(repr=False)
    digest: Digest
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @classmethod
    def parse(cls, raw: bytes, content_type: str | None = None) -> Manifest:
        """Parse and validate; ``content_type`` is the registry's header, if any."""
        obj, media_type = _detect.load(raw, content_type)
        if media_type not in _TYPES:
            raise InvalidInputError(f"manifest: expected an image manifest, got {media_type}")
        return cls.from_object(obj, raw, media_type)

    @classmethod
    def from_object(cls, obj: dict[str, Any], raw: bytes, media_type: str) -> Manifest:
        """Build from an already decoded and type-checked document (see ``parse_manifest``)."""
        what = "manifest"
        if "config" not in obj:
            raise InvalidInputError(f"{what}: missing required field 'config'")
        layers = _json.opt_list(obj, "layers", what, required=True)
        subject = _json.opt_object(obj, "subject", what)
        artifact_type = _json.opt_str(obj, "artifactType", what)
        if artifact_type is not None:
            check_media_type(artifact_type, f"{what}.artifactType")
        return cls(
            media_type=media_type,
            config=Descriptor.from_dict(obj["config"], f"{what} config"),
            layers=tuple(
                Descriptor.from_dict(d, f"{what} layers[{i}]") for i, d in enumerate(layers)
            ),
            raw=raw,
            digest=Digest.of(raw),
            annotations=_json.str_map(obj, what),
            subject=None if subject is None else Descriptor.from_dict(subject, f"{what} subject"),
            artifact_type=artifact_type,
        )

    @classmethod
    def build(
        cls,
        media_type: str,
        config: Descriptor,
        layers: Sequence[Descriptor],
        annotations: Mapping[str, str] | None = None,
        *,
        subject: Descriptor | None = None,
        artifact_type: str | None = None,
    ) -> Manifest:
        """Serialise a new manifest deterministically (compact JSON, the spec's field order).

        Docker schema2 has no annotations, subject or artifactType; asking for them is an error.
        """
        docker = media_type == mt.DOCKER_MANIFEST_V2
        if media_type not in _TYPES:
            raise InvalidInputError(f"cannot build a manifest of type {media_type}")
        if docker and (annotations or subject or artifact_type):
            raise InvalidInputError(
                "a Docker schema2 manifest has no annotations, subject or artifactType"
            )
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
        if artifact_type:
            doc["artifactType"] = artifact_type
        doc["config"] = config.to_dict(docker)
        doc["layers"] = [layer.to_dict(docker) for layer in layers]
        if subject is not None:
            doc["subject"] = subject.to_dict()
        if annotations:
            doc["annotations"] = dict(annotations)
        raw = _json.dumps(doc)
        if len(raw) > _json.MAX_MANIFEST_SIZE:
            raise InvalidInputError(f"manifest: {len(raw)} bytes is over the 4 MiB limit")
        return cls.from_object(doc, raw, media_type)

    def descriptor(self, platform: Platform | None = None) -> Descriptor:
        """A descriptor pointing at this manifest, for an index or a tag."""
        return Descriptor(self.media_type, self.digest, len(self.raw), platform=platform,
                          artifact_type=self.artifact_type)  # fmt: skip

    def matches_digest(self, expected: Digest) -> bool:
        """Whether the bytes hash to ``expected`` (in its own algorithm)."""
        return Digest.of(self.raw, expected.algorithm) == expected
