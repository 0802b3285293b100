"""The per-repository request context shared by the manifest, blob, upload and tag modules.

A :class:`RepoContext` knows the registry and repository, where to send reads (mirrors in order,
then the registry) and writes (the registry only), and which token scopes each needs. Reads fail
over from one mirror to the next on any error, including 404 and 429 (a mirror is not worth
waiting for), and only the registry's own answer is final.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import quote

from lorry.errors import LorryError
from lorry.registry.auth import scope_pull, scope_push
from lorry.registry.config import Endpoint
from lorry.registry.redact import get_logger
from lorry.registry.session import Response
from lorry.registry.transport import BodySource, Transport

__all__ = ["RepoContext"]

log = get_logger(__name__)


@dataclass(frozen=True)
class RepoContext:
    """Everything a request about one repository needs.

    ``home`` and ``pulls`` are the configured endpoints; :attr:`endpoint` and
    :attr:`pull_endpoints` are them with the scheme of an insecure host settled (HTTPS, or
    plain HTTP when TLS fails: :meth:`Transport.settle`, decided on first use, in a worker
    thread like every request).
    """

    transport: Transport
    registry: str
    repository: str
    home: Endpoint
    pulls: tuple[Endpoint, ...]

    @property
    def endpoint(self) -> Endpoint:
        """Where writes go: the registry itself."""
        return self.transport.settle(self.home)

    @property
    def pull_endpoints(self) -> tuple[Endpoint, ...]:
        """Where reads go, in order: the mirrors, then the registry."""
        return tuple(self.transport.settle(e) for e in self.pulls)

    @property
    def name(self) -> str:
        """``registry/repository``, as messages name it."""
        return f"{self.registry}/{self.repository}"

    def url(self, endpoint: Endpoint, path: str) -> str:
        """The absolute URL of ``/v2/<repository><path>`` at ``endpoint``."""
        return f"{endpoint.base_url}/v2/{quote(self.repository)}{path}"

    def read(
        self,
        method: str,
        path: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        expect: Collection[int] = (200,),
    ) -> Response:
        """A read request: mirrors first, each skipped on any failure, then the registry."""
        for endpoint in self.pull_endpoints:
            try:
                resp = self.transport.request(
                    method,
                    self.url(endpoint, path),
                    endpoint=endpoint,
                    scopes=[scope_pull(self.repository)],
                    what=what,
                    headers=headers,
                    expect=set(expect) - {404} if endpoint.mirror else expect,
                    retry=not endpoint.mirror,
                )
            except LorryError as exc:
                if not endpoint.mirror:
                    raise
                log.debug("%s: mirror %s failed (%s); trying the next", what, endpoint.host, exc)
                continue
            if endpoint.mirror:
                log.debug("%s: served by mirror %s", what, endpoint.host)
            return resp
        raise AssertionError("pull_endpoints always ends with the registry itself")

    def write(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        body: BodySource = None,
        expect: Collection[int] = (201,),
        extra_scopes: tuple[str, ...] = (),
        retry: bool = True,
    ) -> Response:
        """A request that changes the registry (push scope), sent to the registry only."""
        return self.transport.request(
            method,
            url,
            endpoint=self.endpoint,
            scopes=[scope_push(self.repository), *extra_scopes],
            what=what,
            headers=headers,
            body=body,
            expect=expect,
            retry=retry,
        )
