"""The status texts of per-layer progress lines, exactly as Docker prints them (xfer-spec §2.3,
§3.2, §5.3), shared by the managers and the descriptors that pull and push implement."""

from __future__ import annotations

__all__ = [
    "ALREADY_EXISTS",
    "COPIED",
    "COPYING",
    "DOWNLOADING",
    "DOWNLOAD_COMPLETE",
    "EXTRACTING",
    "LAYER_ALREADY_EXISTS",
    "PREPARING",
    "PULLING_FS_LAYER",
    "PULL_COMPLETE",
    "PUSHED",
    "PUSHING",
    "SKIPPED_FOREIGN_LAYER",
    "VERIFYING_CHECKSUM",
    "WAITING",
    "mounted_from",
]

#: A layer that must be downloaded was found missing (download manager, caller's sink).
PULLING_FS_LAYER = "Pulling fs layer"
#: The transfer waits for a free slot.
WAITING = "Waiting"
#: Bytes are arriving (descriptor, with current/total).
DOWNLOADING = "Downloading"
#: The download ended; the digest is being checked (descriptor).
VERIFYING_CHECKSUM = "Verifying Checksum"
#: The digest matched (descriptor).
DOWNLOAD_COMPLETE = "Download complete"
#: Decompressing and registering the layer (download manager, with current/total).
EXTRACTING = "Extracting"
#: The layer is registered in the store (download manager).
PULL_COMPLETE = "Pull complete"
#: The layer's chain was already in the store (download manager, caller's sink).
ALREADY_EXISTS = "Already exists"
#: A push is about to consider this layer (upload manager, caller's sink).
PREPARING = "Preparing"
#: Bytes are being sent (descriptor, with current/total).
PUSHING = "Pushing"
#: The blob was uploaded and committed (descriptor).
PUSHED = "Pushed"
#: The target repository already had the blob (descriptor).
LAYER_ALREADY_EXISTS = "Layer already exists"
#: A non-distributable layer that is not pushed (descriptor).
SKIPPED_FOREIGN_LAYER = "Skipped foreign layer"


def mounted_from(repository: str) -> str:
    """The status of a blob mounted from another repository: ``Mounted from library/x``."""
    return f"Mounted from {repository}"


#: A blob is being streamed from one medium to another (skopeo's word), with bytes.
COPYING = "Copying"

#: A copied blob is complete and verified at the destination.
COPIED = "Copied"
