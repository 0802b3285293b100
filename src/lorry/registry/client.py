"""The public face of the registry package: :class:`RegistrySession` and :class:`RegistryClient`.

Use one :class:`RegistrySession` per operation (a pull, a push, a copy): it owns the connection
pool, the per-host backoff, the auth challenges and the token cache, all shared by every thread
that uses it. :meth:`RegistrySession.client` gives a :class:`RegistryClient` for one repository;
its methods block and are safe to call from worker threads at the same time (the byte path runs
in threads, DESIGN.md §1). Every failure is a :mod:`lorry.errors` kind whose message names the
action, the object and the registry; nothing above this package sees ``http.client``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Literal

from lorry._version import __version__
from lorry.digest import Digest, Verifier
from lorry.oci import Descriptor
from lorry.reference import Reference
from lorry.registry import blobs, manifests, referrers, tags, uploads
from lorry.registry.auth import Authenticator, CredentialLookup, CredentialsLike
from lorry.registry.blobs import BlobReader
from lorry.registry.config import Endpoint, RegistryConfig
from lorry.registry.manifests import ManifestInfo
from lorry.registry.proxy import ProxyRules
from lorry.registry.ratelimit import BackoffPolicy, HostBackoff
from lorry.registry.repo import RepoContext
from lorry.registry.session import HttpPool
from lorry.registry.transport import Transport
from lorry.registry.uploads import DEFAULT_CHUNK_SIZE, Readable, UploadSession

__all__ = ["USER_AGENT", "RegistryClient", "RegistrySession"]

#: The User-Agent every request carries.
USER_AGENT = f"lorry/{__version__}"


def _default_lookup(registry: str) -> CredentialsLike | None:
    """Credentials from docker / containers config files and helpers."""
    from lorry.registry import credentials

    return credentials.lookup(registry)


class RegistrySession:
    """Shared HTTP state for one operation: connections, backoff, challenges and tokens."""

    def __init__(
        self,
        config: RegistryConfig | None = None,
        credentials: CredentialLookup | None = None,
        *,
        per_host_connections: int = 8,
        timeout: float = 60.0,
        backoff: BackoffPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = time.time,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.config = config or RegistryConfig()
        # HTTPS_PROXY / HTTP_PROXY / NO_PROXY as Go reads them (lorry.toml's proxy wins over
        # the first two); loopback always goes direct.
        proxies = ProxyRules.from_env(os.environ, self.config.proxy, direct_loopback=True)
        self.pool = HttpPool(
            proxies=proxies if proxies.http or proxies.https else None,
            per_host=per_host_connections,
            timeout=timeout,
            ssl_context=self.config.ssl_context,
            user_agent=user_agent,
        )
        self.backoff = HostBackoff(backoff, clock=clock, sleep=sleep)
        self.auth = Authenticator(
            self.pool, credentials or _default_lookup, self.config, clock=clock
        )
        self.transport = Transport(self.pool, self.auth, self.backoff, wall_clock=wall_clock)

    def client(self, registry: str, repository: str) -> RegistryClient:
        """A client for ``repository`` (``library/alpine``) on ``registry`` (``docker.io``)."""
        ctx = RepoContext(
            transport=self.transport,
            registry=registry,
            repository=repository,
            home=self.config.endpoint(registry),
            pulls=tuple(self.config.pull_endpoints(registry)),
        )
        return RegistryClient(ctx)

    def client_for(self, ref: Reference) -> RegistryClient:
        """A client for the repository a parsed reference names."""
        return self.client(ref.registry, ref.repository)

    def endpoint(self, registry: str) -> Endpoint:
        """The registry's own endpoint, its scheme settled (blocks: an insecure host is probed
        once; call it from a worker thread)."""
        return self.transport.settle(self.config.endpoint(registry))

    def catalog(self, registry: str, page_size: int | None = None) -> list[str]:
        """Every repository ``registry`` lists in its catalog."""
        return tags.catalog(self.transport, self.endpoint(registry), page_size)

    def check_login(self, registry: str) -> None:
        """Prove the session's credentials for ``registry`` work, as ``docker login`` does.

        ``GET /v2/`` is answered through the normal challenge flow; with Bearer auth that means
        a token is fetched with the credentials. Raises AuthError when they are refused.
        """
        endpoint = self.endpoint(registry)
        what = f"logging in to {registry}"
        with self.transport.request(
            "GET", f"{endpoint.base_url}/v2/", endpoint=endpoint, scopes=(), what=what
        ) as resp:
            resp.drain()

    def close(self) -> None:
        """Close idle connections; the session must not be used afterwards."""
        self.pool.close()

    def __enter__(self) -> RegistrySession:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class RegistryClient:
    """Distribution-API operations on one repository; all methods block (use worker threads)."""

    def __init__(self, ctx: RepoContext) -> None:
        self.ctx = ctx

    @property
    def registry(self) -> str:
        """The registry name (``docker.io``, ``127.0.0.1:5000``)."""
        return self.ctx.registry

    @property
    def repository(self) -> str:
        """The repository path (``library/alpine``)."""
        return self.ctx.repository

    def get_manifest(self, ref: str | Digest) -> tuple[bytes, str, Digest]:
        """Raw bytes, media type and digest of a manifest by tag or digest (verified)."""
        return manifests.get_manifest(self.ctx, ref)

    def head_manifest(self, ref: str | Digest) -> ManifestInfo | None:
        """Media type, digest and size of a manifest, or None when it does not exist."""
        return manifests.head_manifest(self.ctx, ref)

    def put_manifest(self, ref: str | Digest, raw: bytes, media_type: str) -> Digest:
        """Push a manifest under a tag or its digest; return its digest."""
        return manifests.put_manifest(self.ctx, ref, raw, media_type)

    def delete_manifest(self, digest: Digest | str) -> None:
        """Delete a manifest by digest."""
        manifests.delete_manifest(self.ctx, digest)

    def stat_blob(self, digest: Digest) -> int | None:
        """A blob's size, or None when the repository does not have it."""
        return blobs.stat_blob(self.ctx, digest)

    def open_blob(
        self,
        digest: Digest,
        offset: int = 0,
        *,
        size: int | None = None,
        urls: Sequence[str] = (),
        verify: bool = False,
        verifier: Verifier | None = None,
    ) -> BlobReader:
        """Stream a blob from ``offset`` (see :mod:`lorry.registry.blobs`)."""
        return blobs.open_blob(
            self.ctx, digest, offset, size=size, urls=urls, verify=verify, verifier=verifier
        )

    def start_upload(self) -> UploadSession:
        """Open an upload session."""
        return uploads.start_upload(self.ctx)

    def mount_blob(self, digest: Digest, from_repo: str) -> Literal[True] | UploadSession:
        """Mount from another repository: True, or an open session to upload into instead."""
        return uploads.mount_blob(self.ctx, digest, from_repo)

    def upload_blob(
        self,
        session: UploadSession,
        stream: Readable,
        digest: Digest,
        size: int,
        *,
        chunked: bool = False,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Digest:
        """Upload ``size`` bytes from ``stream`` into ``session`` and commit them as ``digest``."""
        return uploads.upload_blob(
            self.ctx, session, stream, digest, size, chunked=chunked, chunk_size=chunk_size
        )

    def abort_upload(self, session: UploadSession) -> None:
        """Delete an unfinished upload session (best effort)."""
        uploads.abort_upload(self.ctx, session)

    def referrers(self, subject: Digest) -> list[Descriptor] | None:
        """The manifests whose ``subject`` is ``subject``, or None without the referrers API."""
        return referrers.list_referrers(self.ctx, subject)

    def list_tags(self, page_size: int | None = None) -> list[str]:
        """Every tag of the repository."""
        return tags.list_tags(self.ctx, page_size)
