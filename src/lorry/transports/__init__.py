"""Layer 5 of DESIGN.md §2: the media an image moves between, behind one seam.

:mod:`~lorry.transports.protocols` holds the contract (:class:`ImageSource`,
:class:`ImageDestination`); :mod:`~lorry.transports.names` parses skopeo-style transport
references. Transports never import ``lorry.ops``; the copy engine there drives them.
"""

from lorry.transports.names import TRANSPORTS, TransportRef, parse_transport
from lorry.transports.protocols import (
    BlobOpener,
    BlobStream,
    DestinationProperties,
    ImageDestination,
    ImageSource,
)

__all__ = [
    "TRANSPORTS",
    "BlobOpener",
    "BlobStream",
    "DestinationProperties",
    "ImageDestination",
    "ImageSource",
    "TransportRef",
    "parse_transport",
]
