"""Layer 5 of DESIGN.md §2: the media an image moves between, behind one seam.

:mod:`~lorry.transports.protocols` holds the contract (:class:`ImageSource`,
:class:`ImageDestination`); :mod:`~lorry.transports.names` parses skopeo-style transport
references. Transports never import ``lorry.ops``; the copy engine there drives them.
"""

from lorry.transports.names import TRANSPORTS, TransportRef, parse_transport
from lorry.transports.protocols import (
    BlobMemory,
    BlobOpener,
    BlobStream,
    DestinationProperties,
    ImageDestination,
    ImageSource,
    Mounted,
    Reuse,
    Skipped,
    WaitHook,
)

__all__ = [
    "TRANSPORTS",
    "BlobMemory",
    "BlobOpener",
    "BlobStream",
    "DestinationProperties",
    "ImageDestination",
    "ImageSource",
    "Mounted",
    "Reuse",
    "Skipped",
    "TransportRef",
    "WaitHook",
    "parse_transport",
]
