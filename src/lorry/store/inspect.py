"""Read-only views of images for ``lorry images`` and ``lorry inspect``.

:func:`inspect_image` returns the docker-inspect-like document (Id, RepoTags, RepoDigests,
Created, Os, Architecture, Variant, Config, RootFS, Size); :func:`list_images` one summary per
image and name, as ``docker images`` shows them. Names are shown in Docker's familiar form
(``alpine``, not ``docker.io/library/alpine``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lorry.digest import Digest
from lorry.errors import InvalidReference, NotFoundError
from lorry.reference import parse, parse_any
from lorry.store.images import diff_ids_of
from lorry.store.references import Ref
from lorry.store.remove import resolve_image
from lorry.store.store import Store

__all__ = ["ImageSummary", "familiar_name", "find_image", "inspect_image", "list_images"]


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One row of ``lorry images``: a repository and tag (or none) of one image."""

    repository: str | None
    tag: str | None
    digest: Digest | None
    image_id: Digest
    created: str | None
    size: int


def familiar_name(name: str) -> str:
    """The short form of a stored, fully qualified name (``docker.io/library/x`` → ``x``)."""
    try:
        return parse(name).familiar_name
    except InvalidReference:
        return name


def find_image(store: Store, text: str) -> tuple[Digest, Ref | None]:
    """The image named by ``text`` (reference, full or short ID) and the reference used."""
    try:
        parsed = parse_any(text)
    except InvalidReference:
        parsed = None
    if isinstance(parsed, Digest):
        return resolve_image(store, str(parsed)), None
    if parsed is not None:
        ref = store.refs.get(
            parsed.name,
            tag=None if parsed.digest else (parsed.tag or "latest"),
            digest=Digest.parse(parsed.digest) if parsed.digest else None,
        )
        if ref is not None:
            return ref.image_id, ref
    try:
        return resolve_image(store, text), None
    except NotFoundError:
        raise NotFoundError(f"no such image: {text}") from None


def image_size(store: Store, image_id: Digest) -> int:
    """The uncompressed size of the image's layers, in bytes."""
    image = store.images.get(image_id)
    if image.top_layer is None:
        return 0
    return sum(layer.size for layer in store.layers.chain(image.top_layer))


def inspect_image(store: Store, image_id: Digest) -> dict[str, Any]:
    """The docker-inspect-like JSON document of one image."""
    config = store.images.config(image_id)
    refs = store.refs.for_image(image_id)
    doc: dict[str, Any] = {
        "Id": str(image_id),
        "RepoTags": [f"{familiar_name(r.name)}:{r.tag}" for r in refs if r.tag],
        "RepoDigests": [f"{familiar_name(r.name)}@{r.digest}" for r in refs if r.digest],
        "Created": config.get("created"),
        "Os": config.get("os", ""),
        "Architecture": config.get("architecture", ""),
    }
    if config.get("variant"):
        doc["Variant"] = config["variant"]
    doc["Config"] = config.get("config") or {}
    doc["RootFS"] = {"Type": "layers", "Layers": [str(d) for d in diff_ids_of(config)]}
    doc["Size"] = image_size(store, image_id)
    return doc


def list_images(store: Store, *, show_digests: bool = False) -> list[ImageSummary]:
    """One row per tag (and per digest with ``show_digests``); untagged images get one row."""
    rows: list[ImageSummary] = []
    for image in store.images.all():
        created = store.images.config(image.id).get("created")
        size = image_size(store, image.id)
        refs = store.refs.for_image(image.id)
        shown = [r for r in refs if r.tag or (show_digests and r.digest)]
        if not shown:
            digest = next((r.digest for r in refs if r.digest), None)
            name = familiar_name(refs[0].name) if refs else None
            rows.append(ImageSummary(name, None, digest, image.id, created, size))
        for r in shown:
            rows.append(
                ImageSummary(familiar_name(r.name), r.tag, r.digest, image.id, created, size)
            )
    return rows
