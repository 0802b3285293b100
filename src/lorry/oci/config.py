"""Image configs: the JSON blob whose digest is the image ID and which lists the layer DiffIDs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.oci import _json
from lorry.platform import Platform

__all__ = ["MAX_CONFIG_SIZE", "History", "ImageConfig"]

#: Largest image config lorry reads: configs are blobs, not manifests, and long histories
#: make them bigger than a manifest can be, so the limit is twice the manifest limit.
MAX_CONFIG_SIZE = 2 * _json.MAX_MANIFEST_SIZE


@dataclass(frozen=True, slots=True)
class History:
    """One entry of the config's ``history``: how a layer (or an empty step) was made."""

    created: str | None = None
    created_by: str | None = None
    author: str | None = None
    comment: str | None = None
    empty_layer: bool = False

    @classmethod
    def from_dict(cls, d: Any, what: str) -> History:
        """Read one history object."""
        if not isinstance(d, dict):
            raise InvalidInputError(f"{what}: not a JSON object")
        empty = d.get("empty_layer", False)
        if not isinstance(empty, bool):
            raise InvalidInputError(f"{what}: field 'empty_layer' is not a boolean")
        return cls(
            created=_json.opt_str(d, "created", what),
            created_by=_json.opt_str(d, "created_by", what),
            author=_json.opt_str(d, "author", what),
            comment=_json.opt_str(d, "comment", what),
            empty_layer=empty,
        )


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """A parsed image config (OCI or Docker); ``data`` keeps the whole decoded document.

    ``created`` is kept as the RFC 3339 text it was written as. ``diff_ids`` are bottom first.
    """

    architecture: str
    os: str
    diff_ids: tuple[Digest, ...]
    history: tuple[History, ...]
    raw: bytes = field(repr=False)
    digest: Digest
    data: dict[str, Any] = field(repr=False, hash=False)
    config: dict[str, Any] = field(default_factory=dict, hash=False)
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()
    created: str | None = None
    author: str | None = None
    media_type: str = mt.OCI_CONFIG

    @classmethod
    def parse(
        cls, raw: bytes, media_type: str = mt.OCI_CONFIG, max_size: int = MAX_CONFIG_SIZE
    ) -> ImageConfig:
        """Parse and validate; a config without ``rootfs`` of type ``layers`` is refused."""
        what = "image config"
        d = _json.load_object(raw, what, max_size)
        rootfs = _json.opt_object(d, "rootfs", what)
        if rootfs is None or rootfs.get("type") != "layers":
            raise InvalidInputError(f"{what}: invalid rootfs in image configuration")
        diff_ids = _json.opt_list(rootfs, "diff_ids", f"{what} rootfs", required=True)
        digests = []
        for i, text in enumerate(diff_ids):
            digests.append(_json.digest_field({"d": text}, "d", f"{what} rootfs.diff_ids[{i}]"))
        history = _json.opt_list(d, "history", what)
        return cls(
            architecture=_json.req_str(d, "architecture", what),
            os=_json.req_str(d, "os", what),
            diff_ids=tuple(digests),
            history=tuple(
                History.from_dict(h, f"{what} history[{i}]") for i, h in enumerate(history)
            ),
            raw=raw,
            digest=Digest.of(raw),
            data=d,
            config=_json.opt_object(d, "config", what) or {},
            variant=_json.opt_str(d, "variant", what),
            os_version=_json.opt_str(d, "os.version", what),
            os_features=_json.str_list(d, "os.features", what),
            created=_json.opt_str(d, "created", what),
            author=_json.opt_str(d, "author", what),
            media_type=media_type,
        )

    @property
    def platform(self) -> Platform:
        """The platform the image was built for."""
        return Platform(self.os, self.architecture, self.variant, self.os_version, self.os_features)

    @property
    def id(self) -> Digest:
        """The image ID: the digest of the config bytes."""
        return self.digest

    def layer_history(self) -> list[History]:
        """The history entries that made a layer (``empty_layer`` false), bottom first."""
        return [h for h in self.history if not h.empty_layer]
