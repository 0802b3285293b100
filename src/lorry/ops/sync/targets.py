"""Where one image goes at one destination, what is there now, and the session a sync uses.

A registry destination ``docker://M/prefix`` takes ``R/team/app:1`` as ``M/prefix/team/app:1``
(the whole source repository path under the prefix); an OCI layout ``oci:DIR`` names it
``team/app:1`` in ``index.json``. :func:`current_digest` is the no-op check's one request per
destination: a manifest HEAD (or a read of ``index.json``). :func:`session_options` merges the
file's registries (hosts, credentials) over lorry.toml's; :func:`apply_rates` sets the
file's per-registry request rates, each shard taking its share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from lorry.digest import Digest
from lorry.ops.session import SessionOptions
from lorry.ops.sync.config import DestSpec, RegistrySpec, SyncConfig
from lorry.ops.sync.ledger import BlobLedger, LayoutDestination, LedgerDestination
from lorry.ops.sync.plan import Item
from lorry.registry import credentials
from lorry.registry.auth import CredentialLookup, CredentialsLike
from lorry.registry.client import RegistrySession
from lorry.registry.config import RegistryConfig
from lorry.registry.session import Origin
from lorry.transports import ImageDestination
from lorry.transports.oci_layout import REF_NAME, read_index

__all__ = [
    "Target",
    "apply_rates",
    "by_digest",
    "current_digest",
    "open_target",
    "session_options",
    "target",
]


@dataclass(frozen=True)
class Target:
    """One image at one destination: its name for messages and how to reach it."""

    spec: DestSpec
    name: str
    repository: str
    tag: str


def by_digest(tag: str) -> bool:
    """True for an item named by digest (a referrer), not by tag: tags have no ``:``."""
    return ":" in tag


def target(spec: DestSpec, item: Item) -> Target:
    """Where ``item`` goes at ``spec`` (a referrer by digest: untagged, ``@digest`` in names)."""
    at = f"@{item.tag}" if by_digest(item.tag) else f":{item.tag}"
    if spec.kind == "oci":
        return Target(spec, f"oci:{spec.path}:{item.repository}{at}", item.repository, item.tag)
    repo = f"{spec.prefix}/{item.repository}" if spec.prefix else item.repository
    return Target(spec, f"docker://{spec.registry}/{repo}{at}", repo, item.tag)


def current_digest(session: RegistrySession, where: Target) -> Digest | None:
    """The digest the destination holds under the tag, or None (one request, or a file read)."""
    if where.spec.kind == "oci":
        assert where.spec.path is not None
        if not (where.spec.path / "index.json").is_file():
            return None
        ref = f"{where.repository}:{where.tag}"
        _, entries = read_index(where.spec.path)
        if by_digest(where.tag):
            return next((e.digest for e in entries if str(e.digest) == where.tag), None)
        return next((e.digest for e in entries if e.annotations.get(REF_NAME) == ref), None)
    info = session.client(where.spec.registry, where.repository).head_manifest(where.tag)
    return info.digest if info is not None else None


def open_target(
    session: RegistrySession, where: Target, item: Item, ledger: BlobLedger
) -> ImageDestination:
    """A fresh destination for one copy of ``item``."""
    tag = None if by_digest(where.tag) else where.tag
    if where.spec.kind == "oci":
        assert where.spec.path is not None
        ref = f"{where.repository}:{tag}" if tag else None
        return LayoutDestination(where.spec.path, ref, where.name)
    client = session.client(where.spec.registry, where.repository)
    same = where.spec.registry == item.registry
    return LedgerDestination(client, tag, ledger, mount_from=(item.repository,) if same else ())


def _canonical(host: str) -> str:
    """The registry config's own spelling of a host (Docker Hub's aliases are one)."""
    return next(iter(RegistryConfig.from_mapping({host: {}}).hosts))


def session_options(config: SyncConfig, base: SessionOptions | None) -> SessionOptions:
    """``base`` (lorry.toml's) with the file's hosts, credentials and connection count."""
    base = base or SessionOptions()
    hosts = dict(base.config.hosts) if base.config is not None else {}
    table = {
        h: {
            "mirrors": list(r.mirrors),
            "insecure": r.insecure,
            "ca_file": str(r.ca_file) if r.ca_file else None,
        }
        for h, r in config.registries.items()
        if r.mirrors or r.insecure is not None or r.ca_file
    }
    hosts.update(RegistryConfig.from_mapping(table).hosts)
    files = {_canonical(h): r.auth_file for h, r in config.registries.items() if r.auth_file}
    conns = config.connections or max(base.per_host_connections, config.jobs + config.transfers)
    return replace(
        base,
        config=replace(base.config or RegistryConfig(), hosts=hosts),
        credentials=_lookup(files, base.credentials) if files else base.credentials,
        per_host_connections=conns,
    )


def _lookup(files: Mapping[str, Path], fallback: CredentialLookup | None) -> CredentialLookup:
    """Credentials from the file's ``auth_file`` of a registry first, then as usual."""

    def lookup(name: str) -> CredentialsLike | None:
        path = files.get(_canonical(name))
        if path is not None:
            env = {**os.environ, "REGISTRY_AUTH_FILE": str(path)}
            return credentials.lookup(name, env=env)
        return fallback(name) if fallback is not None else credentials.lookup(name)

    return lookup


def apply_rates(
    session: RegistrySession, registries: Mapping[str, RegistrySpec], shards: int
) -> None:
    """Set each registry's requests-per-second bucket (1/``shards`` of it) and budget share."""
    session.backoff.share_budget(shards)
    for host, spec in registries.items():
        if spec.requests_per_second is None:
            continue
        endpoint = session.config.endpoint(host)
        # an insecure host may end up on plain HTTP (port 80): both get the bucket
        ends = [endpoint, endpoint.plain()] if endpoint.http_fallback else [endpoint]
        rate, burst = spec.requests_per_second / shards, spec.burst or None
        for end in ends:
            session.backoff.set_rate(Origin.of(end.base_url).netloc, rate, burst)
