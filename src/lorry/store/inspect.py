"""Read-only views of images for ``lorry images`` and ``lorry inspect``.

:func:`inspect_image` returns the docker-inspect-like document (Id, RepoTags, RepoDigests,
Created, Os, Architecture, Variant, Config, RootFS, Size); :func:`list_images` one summary per
image and name, as ``docker images`` shows them. Names are shown in Docker's familiar form
(``alpine``, not ``docker.io/library/alpine``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lorry.digest import Digest
from lorry.errors import InvalidInputError, InvalidReference, NotFoundError
from lorry.reference import parse, parse_any
from lorry.store.images import diff_ids_of
from lorry.store.references import Ref
from lorry.store.remove import resolve_image
from lorry.store.store import Store

__all__ = [
    "IMAGE_FILTERS",
    "ImageSummary",
    "familiar_name",
    "filter_images",
    "find_image",
    "inspect_image",
    "list_images",
]


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """One row of ``lorry images``: a repository and tag (or none) of one image."""

    repository: str | None
    tag: str | None
    digest: Digest | None
    image_id: Digest
    created: str | None
    size: int
    #: The config's ``config.Labels`` (for ``--filter label=``).
    labels: dict[str, str] = field(default_factory=dict)


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
    """The rows ``docker images`` shows, newest image first.

    Per image and repository: one row per tag, carrying that repository's digest (if any); a
    repository known only by digest gets one row (one per digest with ``show_digests``); an
    image with no reference at all is one dangling ``<none>`` row.
    """
    rows: list[ImageSummary] = []
    for image in store.images.all():
        config = store.images.config(image.id)
        created = config.get("created")
        labels = _labels(config)
        size = image_size(store, image.id)
        names: dict[str, tuple[list[str], list[Digest]]] = {}
        for r in store.refs.for_image(image.id):
            tags, digests = names.setdefault(r.name, ([], []))
            if r.tag:
                tags.append(r.tag)
            elif r.digest:
                digests.append(r.digest)
        if not names:
            rows.append(ImageSummary(None, None, None, image.id, created, size, labels))
        for name, (tags, digests) in names.items():
            shown = familiar_name(name)
            first = digests[0] if digests else None
            pairs: list[tuple[str | None, Digest | None]] = [(t, first) for t in tags]
            if not tags:
                pairs = [(None, d) for d in (digests if show_digests else digests[:1])]
            rows += [ImageSummary(shown, t, d, image.id, created, size, labels) for t, d in pairs]
    return rows


def _labels(config: dict[str, Any]) -> dict[str, str]:
    inner = config.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


#: The ``--filter`` keys ``lorry images`` understands, as docker spells them.
IMAGE_FILTERS = ("before", "dangling", "label", "reference", "since")


def filter_images(store: Store, rows: list[ImageSummary], filters: list[str]) -> list[ImageSummary]:
    """The rows every ``key=value`` filter keeps (docker's ``images --filter`` rules).

    Values of one key are alternatives (any may match); different keys must all match.
    """
    wanted: dict[str, list[str]] = {}
    for text in filters:
        key, sep, value = text.partition("=")
        if not sep:
            raise InvalidInputError(f"bad filter {text!r}: expected KEY=VALUE")
        if key not in IMAGE_FILTERS:
            raise InvalidInputError(f"invalid filter {key!r} (known: {', '.join(IMAGE_FILTERS)})")
        wanted.setdefault(key, []).append(value)
    tagged = {row.image_id for row in rows if row.tag is not None}
    tests = [_filter(store, key, values, tagged) for key, values in wanted.items()]
    return [row for row in rows if all(test(row) for test in tests)]


def _filter(store: Store, key: str, values: list[str], tagged: set[Digest]) -> Any:
    """A predicate on rows for one filter key (``tagged``: the images that have a tag)."""
    if key == "dangling":  # docker: an image without any tag
        flags = {_bool(v) for v in values}
        return lambda row: (row.image_id not in tagged) in flags
    if key == "reference":
        patterns = [_glob(v) for v in values]
        return lambda row: (
            row.repository is not None
            and any(
                p.fullmatch(row.repository)
                or (row.tag is not None and p.fullmatch(f"{row.repository}:{row.tag}"))
                for p in patterns
            )
        )
    if key == "label":
        pairs = [v.partition("=") for v in values]
        return lambda row: any(
            k in row.labels and (not sep or row.labels[k] == val) for k, sep, val in pairs
        )
    limits = [_created_of(store, v) for v in values]
    if key == "before":
        return lambda row: (t := _when(row.created)) is not None and all(t < lim for lim in limits)
    return lambda row: (t := _when(row.created)) is not None and all(t > lim for lim in limits)


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise InvalidInputError(f"invalid filter dangling={value!r}: expected true or false")


def _glob(pattern: str) -> re.Pattern[str]:
    """Go's ``path.Match`` pattern as a regex: ``*`` and ``?`` stop at ``/``."""
    out = []
    for ch in pattern:
        out.append("[^/]*" if ch == "*" else "[^/]" if ch == "?" else re.escape(ch))
    return re.compile("".join(out))


def _when(created: str | None) -> datetime | None:
    if not created:
        return None
    try:
        when = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _created_of(store: Store, text: str) -> datetime:
    """When the image ``text`` names was created (for ``before=`` / ``since=``)."""
    image_id, _ = find_image(store, text)
    when = _when(store.images.config(image_id).get("created"))
    if when is None:
        raise InvalidInputError(f"filter image {text}: its config has no creation time")
    return when
