"""Indexes: the OCI image index and the Docker manifest list, and choosing an entry by platform."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError, NotFoundError
from lorry.oci import _detect, _json
from lorry.oci.descriptor import Descriptor, check_media_type
from lorry.platform import Platform, ranked

__all__ = ["Index"]


@dataclass(frozen=True, slots=True)
class Index:
    """A list of manifests, usually one per platform (OCI index or Docker manifest list).

    ``raw`` is the document exactly as received or built; ``digest`` is the sha256 of it.
    """

    media_type: str
    manifests: tuple[Descriptor, ...]
    raw: bytes = field(repr=False)
    digest: Digest
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    subject: Descriptor | None = None
    artifact_type: str | None = None

    @classmethod
    def parse(cls, raw: bytes, content_type: str | None = None) -> Index:
        """Parse and validate; ``content_type`` is the registry's header, if any."""
        obj, media_type = _detect.load(raw, content_type, "index")
        if not mt.is_index(media_type):
            raise InvalidInputError(f"index: expected an index, got {media_type}")
        return cls.from_object(obj, raw, media_type)

    @classmethod
    def from_object(cls, obj: dict[str, Any], raw: bytes, media_type: str) -> Index:
        """Build from an already decoded and type-checked document (see ``parse_manifest``)."""
        what = "index"
        entries = _json.opt_list(obj, "manifests", what, required=True)
        subject = _json.opt_object(obj, "subject", what)
        artifact_type = _json.opt_str(obj, "artifactType", what)
        if artifact_type is not None:
            check_media_type(artifact_type, f"{what}.artifactType")
        return cls(
            media_type=media_type,
            manifests=tuple(
                Descriptor.from_dict(d, f"{what} manifests[{i}]") for i, d in enumerate(entries)
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
        manifests: Sequence[Descriptor],
        annotations: Mapping[str, str] | None = None,
        *,
        subject: Descriptor | None = None,
        artifact_type: str | None = None,
    ) -> Index:
        """Serialise a new index deterministically (compact JSON, the spec's field order)."""
        docker = media_type == mt.DOCKER_MANIFEST_LIST
        if not mt.is_index(media_type):
            raise InvalidInputError(f"cannot build an index of type {media_type}")
        if docker and (annotations or subject or artifact_type):
            raise InvalidInputError(
                "a Docker manifest list has no annotations, subject or artifactType"
            )
        doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
        if artifact_type:
            doc["artifactType"] = artifact_type
        doc["manifests"] = [d.to_dict(docker) for d in manifests]
        if subject is not None:
            doc["subject"] = subject.to_dict()
        if annotations:
            doc["annotations"] = dict(annotations)
        raw = _json.dumps(doc)
        if len(raw) > _json.MAX_MANIFEST_SIZE:
            raise InvalidInputError(f"index: {len(raw)} bytes is over the 4 MiB limit")
        return cls.from_object(doc, raw, media_type)

    def matching(self, platform: Platform, strict: bool = False) -> list[Descriptor]:
        """The entries a ``platform`` machine can run, best first.

        Exact platform first, then compatible ones in containerd's preference order, then
        entries without a platform (which fit anything, as in moby). Entries whose media type
        is not a manifest or index lorry knows are skipped, as the image-spec asks.
        """
        usable = [
            d for d in self.manifests if mt.is_manifest(d.media_type) or mt.is_index(d.media_type)
        ]
        order = ranked(platform, [d.platform for d in usable], strict)
        return [usable[i] for i in order]

    def select(self, platform: Platform, strict: bool = False) -> Descriptor:
        """The best entry for ``platform``; :class:`NotFoundError` naming it when none fits."""
        found = self.matching(platform, strict)
        if not found:
            raise NotFoundError(f"no matching manifest for {platform} in the manifest list entries")
        return found[0]

    def descriptor(self, platform: Platform | None = None) -> Descriptor:
        """A descriptor pointing at this index (for a tag or an enclosing index)."""
        return Descriptor(self.media_type, self.digest, len(self.raw), platform=platform,
                          artifact_type=self.artifact_type)  # fmt: skip

    def matches_digest(self, expected: Digest) -> bool:
        """Whether the bytes hash to ``expected`` (in its own algorithm)."""
        return Digest.of(self.raw, expected.algorithm) == expected
