"""Remote look-ups on the copy engine's sources: inspect, config, delete and the catalog.

A look-up opens the source a transport reference names (:func:`~lorry.ops.copy_endpoints.
open_source`: ``docker://``, ``oci:``, ``oci-archive:``, ``docker-archive:``, ``lorry:``) and
resolves it as a copy does (:func:`~lorry.ops.copy.resolve_source`: the top document checked
against a pinned digest, the platform's image chosen from an index, every child verified by
digest); the config blob is verified by size and digest before it is parsed. A single-platform
image that does not fit the wanted (or the host's) platform carries docker's warning
(:func:`~lorry.ops.resolve.platform_warning`). :func:`inspect_document` renders what
``skopeo inspect`` prints; :func:`delete_sync` deletes a manifest by digest, a tag resolved
first as ``skopeo delete`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio.to_thread

from lorry import mediatypes as mt
from lorry.digest import Digest, Verifier
from lorry.errors import InvalidInputError, LorryError, NotFoundError, UnsupportedError
from lorry.oci import MAX_CONFIG_SIZE, Descriptor, ImageConfig, Manifest, Schema1Manifest
from lorry.ops.blocking import run_blocking
from lorry.ops.copy import CopyOptions, resolve_source
from lorry.ops.copy_endpoints import open_source, registry_ref
from lorry.ops.resolve import platform_warning, verify_top
from lorry.ops.session import SessionOptions, lease_session
from lorry.platform import Platform
from lorry.reference import Reference, parse, parse_docker_ref
from lorry.registry.client import RegistrySession
from lorry.store import Store
from lorry.transports import ImageSource, TransportRef, parse_transport
from lorry.transports.registry import RegistrySource

__all__ = [
    "Found",
    "catalog_sync",
    "config_bytes",
    "delete_sync",
    "inspect_document",
    "look_up",
    "look_up_sync",
    "top_document_sync",
]


@dataclass(frozen=True)
class Found:
    """What a look-up found: the top document, the image chosen from it and its config.

    ``config_raw`` is the verified config blob (None for schema1, which has none);
    ``repo_tags`` the repository's tags (``docker://`` with ``tags``, else empty);
    ``warning`` docker's platform-mismatch line, when the single image does not fit.
    """

    reference: str
    name: str | None
    top_raw: bytes
    top_media_type: str
    top_digest: Digest
    manifest: Manifest | Schema1Manifest
    manifest_digest: Digest
    config_raw: bytes | None
    repo_tags: tuple[str, ...] = ()
    warning: str | None = None

    @property
    def is_index(self) -> bool:
        """Whether the reference names an index (the image was chosen from it)."""
        return mt.is_index(self.top_media_type)


async def look_up(
    text: str,
    platform: Platform | None = None,
    *,
    tags: bool = False,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
    store: Store | None = None,
) -> Found:
    """Resolve the transport reference ``text`` to one image and fetch its config.

    ``platform`` picks the image of an index (default: the host's); ``tags`` also lists the
    repository's tags (``docker://`` only). ``session`` is borrowed, never closed.
    """
    tref = parse_transport(text)
    lease = lease_session(session, session_options)
    try:
        source = open_source(tref, lease.session, store)
        try:
            return await _look_up(source, tref, platform, tags)
        finally:
            source.close()
    finally:
        lease.release()


def look_up_sync(text: str, platform: Platform | None = None, **kw: Any) -> Found:
    """:func:`look_up` for synchronous callers (see :func:`~lorry.ops.blocking.run_blocking`)."""
    return run_blocking(partial(look_up, text, platform, **kw))


async def _look_up(
    source: ImageSource, tref: TransportRef, platform: Platform | None, tags: bool
) -> Found:
    """Resolve, fetch and verify the config, then say whether the platform fits."""
    options = CopyOptions(platforms=(platform,) if platform is not None else ())
    resolved, top_raw = await resolve_source(source, options)
    target = resolved.targets[0]
    manifest = target.manifest
    config_raw: bytes | None = None
    if isinstance(manifest, Manifest):
        config_raw = await anyio.to_thread.run_sync(_read_config, source, manifest)
        actual = ImageConfig.parse(config_raw, manifest.config.media_type).platform
    else:
        actual = _schema1_platform(manifest)
    repo_tags: tuple[str, ...] = ()
    if tags and isinstance(source, RegistrySource):
        repo_tags = tuple(await anyio.to_thread.run_sync(source.client.list_tags))
    warning = None
    if not mt.is_index(resolved.media_type):
        warning = platform_warning(_display_ref(tref), actual, platform)
    return Found(
        reference=tref.text,
        name=_name(tref),
        top_raw=top_raw,
        top_media_type=resolved.media_type,
        top_digest=resolved.digest,
        manifest=manifest,
        manifest_digest=target.digest,
        config_raw=config_raw,
        repo_tags=repo_tags,
        warning=warning,
    )


def top_document_sync(
    text: str,
    *,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
    store: Store | None = None,
) -> tuple[bytes, str, Digest]:
    """The document ``text`` names, unchanged and unparsed (checked when pinned by digest)."""
    tref = parse_transport(text)
    lease = lease_session(session, session_options)
    try:
        source = open_source(tref, lease.session, store)
        try:
            raw, media_type, digest = source.get_manifest(None)
            if isinstance(source, RegistrySource) and source.ref.digest:
                pinned = Digest.parse(source.ref.digest)
                verify_top(raw, media_type, pinned)
                digest = pinned
            return raw, media_type, digest
        finally:
            source.close()
    finally:
        lease.release()


def _read_config(source: ImageSource, manifest: Manifest) -> bytes:
    """The manifest's config blob, its size and digest verified before it is returned."""
    desc = manifest.config
    if desc.media_type not in (mt.OCI_CONFIG, mt.DOCKER_CONFIG):
        raise UnsupportedError(
            f"manifest {manifest.digest}: config media type {desc.media_type} is not a "
            "container image config"
        )
    if desc.size > MAX_CONFIG_SIZE:
        raise UnsupportedError(f"image config {desc.digest}: {desc.size} bytes is too large")
    if desc.data is not None:  # embedded (OCI 1.1): already checked against the descriptor
        return desc.data
    verifier = Verifier(desc.digest, desc.size, f"image config {desc.digest} of {source.name}")
    chunks: list[bytes] = []
    stream = source.open_blob(desc)
    try:
        for chunk in stream:
            verifier.update(chunk)
            chunks.append(chunk)
    finally:
        stream.close()
    verifier.verify()
    return b"".join(chunks)


def _v1_top(manifest: Schema1Manifest) -> dict[str, Any]:
    """The top entry's ``v1Compatibility`` object: what a schema1 image says of itself."""
    try:
        doc = json.loads(manifest.history[0])
    except ValueError as exc:
        raise InvalidInputError(f"schema1 manifest {manifest.digest}: bad v1Compatibility") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError(f"schema1 manifest {manifest.digest}: bad v1Compatibility")
    return doc


def _schema1_platform(manifest: Schema1Manifest) -> Platform:
    """A schema1 image's platform: the manifest's architecture, the v1 entry's OS."""
    top = _v1_top(manifest)
    os_name = top.get("os") if isinstance(top.get("os"), str) else "linux"
    arch = manifest.architecture or str(top.get("architecture") or "amd64")
    return Platform(str(os_name), arch)


def _display_ref(tref: TransportRef) -> str:
    """The reference as docker names it in its warning (the familiar form for registries)."""
    if tref.transport == "docker":
        return registry_ref(tref).familiar
    return tref.text


def _name(tref: TransportRef) -> str | None:
    """skopeo's ``Name``: the repository a registry or docker-archive reference names."""
    if tref.transport == "docker":
        return registry_ref(tref).name
    if tref.transport == "docker-archive" and tref.ref:
        try:
            return parse_docker_ref(tref.ref).name
        except InvalidInputError:
            return None
    return None


def inspect_document(found: Found) -> dict[str, Any]:
    """The fields ``skopeo inspect`` prints, in its order, for what :func:`look_up` found."""
    manifest = found.manifest
    if isinstance(manifest, Manifest):
        assert found.config_raw is not None
        config = ImageConfig.parse(found.config_raw, manifest.config.media_type)
        body = config.config
        created, docker_version = config.created, config.data.get("docker_version")
        arch, os_name, variant = config.architecture, config.os, config.variant
        layers = [_layer_data(d) for d in manifest.layers]
    else:
        top = _v1_top(manifest)
        v1_config = top.get("config")
        body = v1_config if isinstance(v1_config, dict) else {}
        created, docker_version = top.get("created"), top.get("docker_version")
        platform = _schema1_platform(manifest)
        arch, os_name, variant = platform.architecture, platform.os, None
        layers = [
            {"MIMEType": mt.DOCKER_LAYER_GZIP, "Digest": str(d), "Size": -1, "Annotations": None}
            for d in reversed(manifest.fs_layers)
        ]
    out: dict[str, Any] = {}
    if found.name is not None:
        out["Name"] = found.name
    out |= {
        "Digest": str(found.top_digest),
        "RepoTags": list(found.repo_tags),
        "Created": created,
        "DockerVersion": docker_version if isinstance(docker_version, str) else "",
        "Labels": body.get("Labels"),
        "Architecture": arch,
    }
    if variant:
        out["Variant"] = variant
    out |= {
        "Os": os_name,
        "Layers": [layer["Digest"] for layer in layers],
        "LayersData": layers,
        "Env": body.get("Env"),
    }
    return out


def _layer_data(desc: Descriptor) -> dict[str, Any]:
    """One ``LayersData`` entry: media type, digest, size and annotations (null when none)."""
    return {
        "MIMEType": desc.media_type,
        "Digest": str(desc.digest),
        "Size": desc.size,
        "Annotations": dict(desc.annotations) if desc.annotations else None,
    }


def config_bytes(found: Found) -> bytes:
    """The chosen image's config blob; a schema1 image has none (UnsupportedError)."""
    if found.config_raw is None:
        raise UnsupportedError(
            f"{found.reference}: a schema1 image has no config blob (lorry builds one from "
            "its layers only when it pulls them)"
        )
    return found.config_raw


def delete_sync(
    text: str,
    *,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
) -> Reference:
    """Delete the manifest a registry reference names; return it as ``name@digest``.

    A tag is resolved to its digest first (registries delete by digest, as ``skopeo delete``
    does), which removes every tag pointing at that manifest. A registry that refuses
    deletion (405 / UNSUPPORTED) is an UnsupportedError that says so.
    """
    tref = parse_transport(text)
    if tref.transport == "lorry" and not text.startswith("lorry:"):
        tref = parse_transport(f"docker://{text}")  # a bare reference names a registry image
    if tref.transport != "docker":
        raise InvalidInputError(f"{text}: delete takes a registry reference (REF or docker://REF)")
    ref = registry_ref(tref)
    lease = lease_session(session, session_options)
    try:
        client = lease.session.client_for(ref)
        if ref.digest:
            digest = Digest.parse(ref.digest)
        else:
            info = client.head_manifest(ref.tag or "latest")
            if info is None:
                raise NotFoundError(f"{ref}: no such manifest in {ref.registry}")
            digest = info.digest
        try:
            client.delete_manifest(digest)
        except LorryError as exc:
            if exc.status == 405 or "UNSUPPORTED" in exc.codes:
                # The registry's own words add nothing to this line: the cause is left out.
                raise UnsupportedError(
                    f"deleting {ref.name}@{digest}: the registry {ref.registry} refuses deletes "
                    f"({exc.status or 405} UNSUPPORTED); the CNCF registry deletes only with "
                    "storage.delete.enabled: true",
                    status=exc.status,
                    url=exc.url,
                    codes=exc.codes,
                ) from None
            raise
    finally:
        lease.release()
    return ref.name_only().with_digest(digest)


def catalog_sync(
    registry: str,
    page_size: int | None = None,
    *,
    session: RegistrySession | None = None,
    session_options: SessionOptions | None = None,
) -> list[Reference]:
    """Every repository ``registry`` (``host[:port]``) lists, as name-only references."""
    try:
        probe = parse(f"{registry}/probe") if "/" not in registry else None
    except InvalidInputError:
        probe = None
    if probe is None or probe.registry != registry:
        raise InvalidInputError(
            f"{registry}: not a registry host (write HOST[:PORT], e.g. localhost:5000)"
        )
    lease = lease_session(session, session_options)
    try:
        names = lease.session.catalog(registry, page_size)
    finally:
        lease.release()
    return [parse(f"{registry}/{name}") for name in names]
