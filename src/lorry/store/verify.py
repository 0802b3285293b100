"""``lorry verify``: one image checked fully — every blob's digest and every layer's DiffID.

A pull by default verifies each layer blob by digest and size and takes its DiffID from the
config (docs/decisions.md, "Verification model"); this inflates the image's layers and checks
those DiffIDs, marking each layer verified or bad (:meth:`LayerStore.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lorry.digest import Digest
from lorry.errors import IntegrityError
from lorry.store.images import diff_ids_of
from lorry.store.layers import Layer
from lorry.store.store import Store

__all__ = ["VerifyReport", "verify_image"]


@dataclass
class VerifyReport:
    """What :func:`verify_image` checked and what it found wrong (one message per layer)."""

    image_id: Digest
    layers: list[Layer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def verify_image(store: Store, image_id: Digest) -> VerifyReport:
    """Check the image's config and every layer; raise the first IntegrityError after all ran.

    The config must hash to the image ID and list the image's DiffIDs; each layer's blob must
    be sound and its content have the DiffID registered for it.
    """
    report = VerifyReport(image_id)
    image = store.images.get(image_id)
    config = store.images.config(image_id)  # read back by digest: its bytes are checked below
    if not store.content.is_sound(image_id, store.content.info(image_id).size):
        report.errors.append(f"image config {image_id} does not hash to its digest")
    chain = store.layers.chain(image.top_layer)
    if [layer.diff_id for layer in chain] != diff_ids_of(config):
        report.errors.append(f"image {image_id}: its layers do not match its config's DiffIDs")
    for layer in chain:
        if not store.content.is_sound(layer.blob_digest, layer.blob_size):
            report.errors.append(f"layer blob {layer.blob_digest} is missing or damaged")
            continue
        try:
            report.layers.append(store.layers.verify(layer.chain_id))
        except IntegrityError as exc:
            report.errors.append(str(exc))
    if report.errors:
        more = f" (and {len(report.errors) - 1} more)" if len(report.errors) > 1 else ""
        raise IntegrityError(report.errors[0] + more)
    return report
