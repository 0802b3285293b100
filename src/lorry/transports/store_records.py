"""What a verified image arriving in the store records there (docs/store.md, "What pull
records"): pull's last stage and the ``lorry:`` destination's commit. Push depends on these
records, so they are listed here once:

1. the config blob (its digest is the image ID) and the image row (:meth:`ImageStore.create`);
2. every document the image was reached through, as a blob with its exact bytes, linked to the
   image with :meth:`ImageStore.add_manifest`: the image manifest and any index (manifest list)
   above it — an index is linked to every image pulled through it, so the tag's image leads to
   the index (a signed schema1 manifest is stored under the sha256 of its bytes);
3. distribution metadata: (DiffID, blob digest, registry, repository) of every layer whose pair
   the store computed itself;
4. references: ``name:tag`` (moved if it pointed elsewhere) and ``name@digest`` with the digest
   reported (the index's when pulled through one). A digest reference of an index may be
   re-pointed to the image of another platform; one of an image manifest never changes.

All functions block; they run in a worker thread while the pull holds :meth:`Store.hold`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from lorry import mediatypes as mt
from lorry.digest import DiffID, Digest
from lorry.errors import IntegrityError
from lorry.store import Image, Ref, Store

__all__ = ["Document", "record_image", "record_refs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Document:
    """A manifest or index exactly as received, with the media type it was served as."""

    raw: bytes
    media_type: str


def record_image(
    store: Store,
    config_digest: Digest,
    documents: Sequence[Document],
    layers: Sequence[tuple[DiffID, Digest]],
    *,
    registry: str,
    repository: str,
) -> Image:
    """Create the image of a committed config and record its documents and layer metadata."""
    image = store.images.create(config_digest)
    for doc in documents:
        info = store.content.put_bytes(doc.raw, media_type=doc.media_type)
        store.images.add_manifest(image.id, info.digest, doc.media_type)
    # One transaction for every layer's record, not one each: a commit (an fsync of the
    # database with ``synchronous = FULL``) per layer was most of a 40-layer pull's commit on
    # a real disk (≈ 50 ms of ≈ 60). A record refused below writes nothing, so the others
    # still commit together.
    with store.transaction():
        for diff_id, blob in layers:
            # Where the blob lives holds whatever its DiffID: a pair the store has not verified
            # (a config's claim) is recorded as claimed, for mounting that blob only.
            claimed = any(layer.diff_id == diff_id for layer in store.layers.by_blob(blob))
            try:
                store.distmeta.record(diff_id, blob, registry, repository, claimed=claimed)
            except IntegrityError:  # an existing layer made from another blob: nothing verified
                log.debug("not recording %s for %s: pair not computed locally", blob, diff_id)
    return image


def record_refs(
    store: Store,
    name: str,
    image_id: Digest,
    *,
    tag: str | None,
    digest: Digest,
    digest_media_type: str,
) -> bool:
    """Point ``name:tag`` and ``name@digest`` at the image; True when the pulled ref changed.

    Pulled by tag, "changed" means the tag moved (docker's ``Downloaded newer image``);
    pulled by digest (``tag`` None), that the digest reference is new.
    """
    with store.transaction():  # both references move together, in one commit
        if mt.is_index(digest_media_type):
            old = store.refs.get(name, digest=digest)
            if old is not None and old.image_id != image_id:
                store.refs.remove(Ref(name, None, digest, old.image_id))
        added = store.refs.add_digest(name, digest, image_id)
        if tag is None:
            return added
        return store.refs.add_tag(name, tag, image_id)
