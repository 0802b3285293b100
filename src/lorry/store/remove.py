"""Removing images: ``rmi`` semantics (untag; delete the image with its last reference).

Removing by reference untags it; once no tag is left, the image's digest references go too
and the image is deleted (as Docker does). Removing by
image ID deletes the image with all its references, but refuses when several references name
it or when another image is built on it (its layer stack contains this image's), unless forced.
Layers and blobs the image leaves unused are left to :func:`lorry.store.gc.prune`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorry.digest import Digest
from lorry.errors import InvalidInputError, NotFoundError
from lorry.store.references import Ref
from lorry.store.store import Store

__all__ = ["RemoveResult", "remove_image", "remove_reference", "resolve_image"]


@dataclass
class RemoveResult:
    """What ``rmi`` did: references removed (``Untagged``) and images deleted (``Deleted``)."""

    untagged: list[Ref] = field(default_factory=list)
    deleted: list[Digest] = field(default_factory=list)


def resolve_image(store: Store, text: str) -> Digest:
    """The image ID named by a full or short (≥ 4 hex characters) ID; errors when ambiguous."""
    hexpart = text.split(":", 1)[1] if text.startswith("sha256:") else text
    if len(hexpart) < 4 or any(c not in "0123456789abcdef" for c in hexpart):
        raise NotFoundError(f"no such image: {text}")
    found = store.images.by_prefix(hexpart)
    if not found:
        raise NotFoundError(f"no such image: {text}")
    if len(found) > 1:
        raise InvalidInputError(f"image ID prefix {text} is ambiguous ({len(found)} images)")
    return found[0].id


def remove_reference(store: Store, ref: Ref) -> RemoveResult:
    """Untag ``ref``; with the last tag gone, drop the digest references and the image too."""
    result = RemoveResult()
    if store.refs.remove(ref):
        result.untagged.append(ref)
    left = store.refs.for_image(ref.image_id)
    if any(r.tag for r in left):
        return result
    for other in left:
        if store.refs.remove(other):
            result.untagged.append(other)
    if store.images.delete(ref.image_id):
        result.deleted.append(ref.image_id)
    return result


def remove_image(store: Store, image_id: Digest, *, force: bool = False) -> RemoveResult:
    """Delete an image by ID with all its references; refuse (unless forced) as described."""
    store.images.get(image_id)
    refs = store.refs.for_image(image_id)
    if not force:
        if len(refs) > 1:
            names = ", ".join(str(r) for r in refs)
            raise InvalidInputError(
                f"unable to delete image {image_id.short} (must be forced): it is referenced "
                f"by {len(refs)} names: {names}"
            )
        children = store.images.children(image_id)
        if children:
            ids = ", ".join(c.id.short for c in children)
            raise InvalidInputError(
                f"unable to delete image {image_id.short} (must be forced): images built on it "
                f"need it: {ids}"
            )
    result = RemoveResult(untagged=refs)
    if store.images.delete(image_id):
        result.deleted.append(image_id)
    return result
