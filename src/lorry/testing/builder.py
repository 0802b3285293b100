"""A deterministic builder of OCI image layouts, for tests and benchmarks.

:func:`build_image` writes ``oci-layout``, ``index.json`` and ``blobs/sha256/…`` for an image of
N generated layers (see :class:`LayerSpec`), optionally one image per platform under an index.
Same arguments → byte-identical blobs, so digests can be asserted and caches keyed by arguments.
Layers are generated, hashed and compressed in a streaming pass, two at a time in worker threads
(the hashing, compressing and keystream code releases the GIL), so a gigabyte image takes
seconds and never sits in memory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError, UnsupportedError
from lorry.testing._build_layer import (
    FIXED_MTIME,
    Compression,
    LayerBlob,
    LayerSpec,
    write_layer,
)

__all__ = [
    "BuiltImage",
    "Compression",
    "LayerSpec",
    "build_image",
    "large_image_spec",
    "many_small_image_spec",
]

#: The OCI annotation that names a tag inside an image layout's index.json.
REF_NAME = "org.opencontainers.image.ref.name"
_CREATED = datetime.fromtimestamp(FIXED_MTIME, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BuiltImage:
    """What :func:`build_image` wrote: digests and raw bytes of every document, per platform.

    For a multi-platform build the ``manifest_*``, ``config_*`` and ``layer_*`` fields are those
    of the first platform (``children[0]``); ``index_*`` describe the index (OCI) or manifest
    list (Docker) that the tag points at, and ``children`` holds one image per platform.
    """

    layout: Path
    tag: str
    manifest_digest: Digest
    manifest_bytes: bytes
    media_type: str
    config_digest: Digest
    config_bytes: bytes
    layer_digests: list[Digest]
    diff_ids: list[Digest]
    layer_sizes: list[int]
    layer_media_type: str
    platform: str
    index_digest: Digest | None = None
    index_bytes: bytes | None = None
    index_media_type: str | None = None
    children: list[BuiltImage] = field(default_factory=list)
    #: The DiffIDs the layers' content really has (differs from ``diff_ids``, the config's,
    #: only for an image built with ``claimed_diff_ids``).
    content_diff_ids: list[Digest] = field(default_factory=list)

    @property
    def top_digest(self) -> Digest:
        """The digest the tag resolves to: the index's when there is one, else the manifest's."""
        return self.index_digest or self.manifest_digest

    @property
    def top_media_type(self) -> str:
        """The media type of the document the tag resolves to."""
        return self.index_media_type or self.media_type

    def blob_path(self, digest: Digest) -> Path:
        """Where the blob ``digest`` lives in the layout."""
        return self.layout / "blobs" / digest.algorithm / digest.encoded


@dataclass(frozen=True)
class _Types:
    """The media types of one flavour (OCI or Docker schema2) and compression."""

    manifest: str
    index: str
    config: str
    layer: str


def _types(media_types: str, compression: Compression) -> _Types:
    if media_types == "oci":
        layer = {"gzip": mt.OCI_LAYER_GZIP, "zstd": mt.OCI_LAYER_ZSTD, "none": mt.OCI_LAYER}
        if compression not in layer:
            raise InvalidInputError(f"unknown compression {compression!r}")
        return _Types(mt.OCI_MANIFEST, mt.OCI_INDEX, mt.OCI_CONFIG, layer[compression])
    if media_types == "docker":
        if compression != "gzip":
            raise UnsupportedError(
                f"Docker schema2 has no layer media type for {compression!r} compression"
            )
        return _Types(
            mt.DOCKER_MANIFEST_V2, mt.DOCKER_MANIFEST_LIST, mt.DOCKER_CONFIG, mt.DOCKER_LAYER_GZIP
        )
    raise InvalidInputError(f"unknown media type flavour {media_types!r}: want oci or docker")


def _platform(text: str) -> dict[str, str]:
    """``os/arch[/variant]`` as an OCI platform object."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidInputError(f"invalid platform {text!r}: want os/arch[/variant]")
    out = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return out


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, indent=2).encode()


def _put(layout: Path, data: bytes) -> Digest:
    """Write a small blob into the layout (atomically) and return its digest."""
    digest = Digest.of(data)
    path = layout / "blobs" / "sha256" / digest.encoded
    if not path.exists():
        tmp = path.with_name(f".tmp-{digest.encoded}-{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(path)
    return digest


def _descriptor(media_type: str, digest: Digest, size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": str(digest), "size": size}


def _config(platform: str, seed: int, specs: Sequence[LayerSpec], diff_ids: list[Digest]) -> bytes:
    """A realistic image config for the built layers."""
    history = [
        {
            "created": _CREATED,
            "created_by": f"lorry.testing: layer {i}, {spec.files} files, {spec.size} bytes",
        }
        for i, spec in enumerate(specs)
    ]
    return _dumps(
        {
            **_platform(platform),
            "created": _CREATED,
            "author": "lorry.testing",
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                "Cmd": ["/bin/sh"],
                "WorkingDir": "/",
                "Labels": {"org.lorry.testing.seed": str(seed)},
            },
            "rootfs": {"type": "layers", "diff_ids": [str(d) for d in diff_ids]},
            "history": history,
        }
    )


def _build_one(
    layout: Path,
    specs: Sequence[LayerSpec],
    *,
    key: str,
    seed: int,
    platform: str,
    types: _Types,
    compression: Compression,
    tag: str,
    claimed: Mapping[int, Digest],
) -> BuiltImage:
    """Write the layers, config and manifest of one single-platform image."""
    blobs_dir = layout / "blobs" / "sha256"

    def one(index: int) -> LayerBlob:
        return write_layer(blobs_dir, specs[index], index=index, key=key, compression=compression)

    with ThreadPoolExecutor(max_workers=min(2, len(specs)) or 1) as pool:
        layers = list(pool.map(one, range(len(specs))))
    content = [layer.diff_id for layer in layers]
    diff_ids = [claimed.get(i, d) for i, d in enumerate(content)]
    config = _config(platform, seed, specs, diff_ids)
    config_digest = _put(layout, config)
    manifest = _dumps(
        {
            "schemaVersion": 2,
            "mediaType": types.manifest,
            "config": _descriptor(types.config, config_digest, len(config)),
            "layers": [_descriptor(types.layer, x.digest, x.size) for x in layers],
        }
    )
    return BuiltImage(
        layout=layout,
        tag=tag,
        manifest_digest=_put(layout, manifest),
        manifest_bytes=manifest,
        media_type=types.manifest,
        config_digest=config_digest,
        config_bytes=config,
        layer_digests=[x.digest for x in layers],
        diff_ids=diff_ids,
        layer_sizes=[x.size for x in layers],
        layer_media_type=types.layer,
        platform=platform,
        content_diff_ids=content,
    )


def _write_layout_index(layout: Path, tag: str, descriptor: dict[str, Any]) -> None:
    """Point ``tag`` at ``descriptor`` in index.json, keeping the layout's other tags."""
    (layout / "oci-layout").write_bytes(_dumps({"imageLayoutVersion": "1.0.0"}))
    index_path = layout / "index.json"
    manifests: list[dict[str, Any]] = []
    if index_path.exists():
        old = json.loads(index_path.read_bytes())
        manifests = [
            m for m in old.get("manifests", []) if m.get("annotations", {}).get(REF_NAME) != tag
        ]
    manifests.append({**descriptor, "annotations": {REF_NAME: tag}})
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": manifests}
    tmp = layout / ".index.json.tmp"
    tmp.write_bytes(_dumps(index))
    tmp.replace(index_path)


def build_image(
    dest: Path,
    *,
    layers: int | Sequence[LayerSpec] = 3,
    seed: int = 0,
    compression: Compression = "gzip",
    media_types: Literal["oci", "docker"] = "oci",
    platforms: Sequence[str] | None = None,
    tag: str = "latest",
    claimed_diff_ids: Mapping[int, Digest] | None = None,
) -> BuiltImage:
    """Write a deterministic image, tagged ``tag``, into the OCI layout ``dest`` (made if missing).

    ``layers`` is a count of default :class:`LayerSpec` layers or the specs themselves.
    ``platforms`` (``["linux/amd64", "linux/arm64/v8"]``) builds one image per platform, each
    with its own layers, under an OCI index (Docker: a manifest list). Docker media types
    support gzip only and raise :class:`UnsupportedError` otherwise. ``claimed_diff_ids``
    makes an image that lies: its config claims these DiffIDs (by layer index) where the
    layers' content has others; every blob still matches its digest.
    """
    specs = [LayerSpec()] * layers if isinstance(layers, int) else list(layers)
    if not specs:
        raise InvalidInputError("build_image needs at least one layer")
    types = _types(media_types, compression)
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    common: dict[str, Any] = {
        "seed": seed,
        "types": types,
        "compression": compression,
        "tag": tag,
        "claimed": dict(claimed_diff_ids or {}),
    }
    if platforms is None:
        image = _build_one(dest, specs, key=str(seed), platform="linux/amd64", **common)
        _write_layout_index(
            dest, tag, _descriptor(types.manifest, image.manifest_digest, len(image.manifest_bytes))
        )
        return image
    if not platforms:
        raise InvalidInputError("platforms, when given, must name at least one platform")
    for p in platforms:
        _platform(p)  # validate them all before writing gigabytes
    children = [_build_one(dest, specs, key=f"{seed}/{p}", platform=p, **common) for p in platforms]
    index = _dumps(
        {
            "schemaVersion": 2,
            "mediaType": types.index,
            "manifests": [
                {
                    **_descriptor(c.media_type, c.manifest_digest, len(c.manifest_bytes)),
                    "platform": _platform(c.platform),
                }
                for c in children
            ],
        }
    )
    index_digest = _put(dest, index)
    _write_layout_index(dest, tag, _descriptor(types.index, index_digest, len(index)))
    return replace(
        children[0],
        index_digest=index_digest,
        index_bytes=index,
        index_media_type=types.index,
        children=children,
    )


def large_image_spec() -> list[LayerSpec]:
    """The benchmark's 'large' image: 8 layers, ≈1.06 GB uncompressed, ≈40.8k files."""
    return [LayerSpec(files=5100, size=128_500_000, random_fraction=0.23) for _ in range(8)]


def many_small_image_spec() -> list[LayerSpec]:
    """The benchmark's 'many-small' image: 40 layers of about 3 MB each."""
    return [LayerSpec(files=60, size=3_000_000, random_fraction=0.5) for _ in range(40)]
