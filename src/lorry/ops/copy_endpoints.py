"""From transport references (``docker://…``, ``oci:…``, …) to open sources and destinations.

The one place that maps a :class:`~lorry.transports.TransportRef` to its transport class.
Registry endpoints borrow the copy's registry session; a registry → registry copy within one
registry lets the destination mount blobs from the source repository.
"""

from __future__ import annotations

from pathlib import Path

from lorry.errors import InvalidInputError
from lorry.ops.session import check_remote_reference
from lorry.reference import Reference, parse_docker_ref
from lorry.registry.client import RegistrySession
from lorry.store import Store
from lorry.transports import ImageDestination, ImageSource, TransportRef
from lorry.transports.docker_archive import DockerArchiveDestination, DockerArchiveSource
from lorry.transports.oci_archive import OciArchiveDestination, OciArchiveSource
from lorry.transports.oci_layout import OciLayoutDestination, OciLayoutSource
from lorry.transports.registry import RegistryDestination, RegistrySource
from lorry.transports.store import StoreDestination, StoreSource

__all__ = ["open_destination", "open_source", "registry_ref"]


def registry_ref(tref: TransportRef) -> Reference:
    """The fully qualified registry reference of a ``docker://`` endpoint."""
    assert tref.ref is not None
    return check_remote_reference(parse_docker_ref(tref.ref))


def _store(tref: TransportRef, store: Store | None) -> Store:
    if store is None:
        raise InvalidInputError(f"{tref}: the local store was not opened for this copy")
    return store


def open_source(
    tref: TransportRef, session: RegistrySession, store: Store | None = None
) -> ImageSource:
    """Open the source ``tref`` names (files are read lazily; nothing is fetched yet)."""
    path = Path(tref.path)
    match tref.transport:
        case "docker":
            ref = registry_ref(tref)
            return RegistrySource(session.client_for(ref), ref)
        case "oci":
            return OciLayoutSource(path, tref.ref, tref.text)
        case "oci-archive":
            return OciArchiveSource(path, tref.ref, tref.text)
        case "docker-archive":
            return DockerArchiveSource(path, tref.ref, tref.text)
        case "lorry":
            assert tref.ref is not None
            return StoreSource(_store(tref, store), tref.ref, tref.text)
    raise InvalidInputError(f"{tref}: unknown transport")  # pragma: no cover - exhaustive


def open_destination(
    tref: TransportRef,
    session: RegistrySession,
    source: TransportRef | None = None,
    store: Store | None = None,
) -> ImageDestination:
    """Open the destination ``tref`` names; ``source`` lets a registry mount from it."""
    path = Path(tref.path)
    match tref.transport:
        case "docker":
            ref = registry_ref(tref)
            mount: tuple[str, ...] = ()
            if source is not None and source.transport == "docker":
                src = registry_ref(source)
                if src.registry == ref.registry:
                    mount = (src.repository,)
            tag = None if ref.digest else (ref.tag or "latest")
            return RegistryDestination(session.client_for(ref), tag, mount_from=mount)
        case "oci":
            return OciLayoutDestination(path, tref.ref, tref.text)
        case "oci-archive":
            return OciArchiveDestination(path, tref.ref, tref.text)
        case "docker-archive":
            return DockerArchiveDestination(path, tref.ref, tref.text)
        case "lorry":
            return StoreDestination(_store(tref, store), tref.ref, tref.text)
    raise InvalidInputError(f"{tref}: unknown transport")  # pragma: no cover - exhaustive
