"""One registry request done right: auth, redirects, per-host backoff, retries, error mapping.

:meth:`Transport.request` wraps :class:`~lorry.registry.session.HttpPool` the way
go-containerregistry stacks its transports: it adds ``Authorization`` only for the registry's
own origin (so a redirect to blob storage, or an upload ``Location`` on another host, never
receives it), follows redirects itself, answers 401 challenges through
:class:`~lorry.registry.auth.Authenticator`, waits for the host's shared backoff slot, retries
429 / 5xx / lost connections with ``Retry-After`` honoured up to a cap, paces a host whose
``RateLimit-*`` headers say its budget runs low, and never replays a body it cannot produce
again. A response outside ``expect`` becomes a lorry error whose message names
the action, object and registry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urljoin

from lorry.errors import AuthError, LorryError, StallError, UnavailableError
from lorry.registry.auth import Authenticator
from lorry.registry.config import Endpoint
from lorry.registry.errors import MAX_ERROR_BODY, error_for_status, parse_retry_after
from lorry.registry.ratelimit import HostBackoff, parse_budget
from lorry.registry.redact import get_logger, redact_url
from lorry.registry.session import Body, HttpPool, Origin, Response

__all__ = ["BodySource", "Transport"]

log = get_logger(__name__)

#: A request body, or a function that produces it afresh (which makes it replayable).
BodySource = Body | Callable[[], Body]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass
class _Call:
    """One logical request as the caller asked for it (before redirects and retries)."""

    method: str
    url: str
    endpoint: Endpoint
    scopes: list[str]
    what: str
    headers: dict[str, str]
    body: BodySource
    retry: bool = True

    @property
    def home(self) -> Origin:
        """The registry's own origin: the only one that receives ``Authorization``."""
        return Origin.of(self.endpoint.base_url)

    @property
    def replayable(self) -> bool:
        """True when the body can be sent again (absent, bytes, or a factory)."""
        return self.body is None or isinstance(self.body, bytes) or callable(self.body)


class Transport:
    """Sends registry requests with auth, redirects, shared backoff and bounded retries."""

    def __init__(
        self,
        pool: HttpPool,
        auth: Authenticator,
        backoff: HostBackoff,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.pool = pool
        self.auth = auth
        self.backoff = backoff
        self._wall_clock = wall_clock
        self._settled: dict[str, Endpoint] = {}
        self._settling: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def settle(self, endpoint: Endpoint) -> Endpoint:
        """The endpoint with its scheme decided: an insecure host (``http_fallback``) keeps
        HTTPS when a TLS session can be set up, else becomes plain HTTP (docker's rule).

        Decided once per session and host; the probe's connection serves the next request.
        """
        if not endpoint.http_fallback:
            return endpoint
        key = endpoint.base_url
        with self._lock:
            done = self._settled.get(key)
            if done is not None:
                return done
            lock = self._settling.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                done = self._settled.get(key)
            if done is None:
                why = self.pool.tls_handshake(key)
                # A TLS alert means the server speaks TLS (and wants, say, a client
                # certificate): the request itself then fails with the reason.
                if why is None or "ALERT" in why:
                    done = replace(endpoint, http_fallback=False)
                else:
                    log.debug("%s: no TLS (%s); insecure, so plain HTTP", endpoint.host, why)
                    done = endpoint.plain()
                with self._lock:
                    self._settled[key] = done
        return done

    def request(
        self,
        method: str,
        url: str,
        *,
        endpoint: Endpoint,
        scopes: Sequence[str],
        what: str,
        headers: dict[str, str] | None = None,
        body: BodySource = None,
        expect: Collection[int] = (200,),
        follow_redirects: bool = True,
        retry: bool = True,
    ) -> Response:
        """Send the request and return a response whose status is in ``expect``.

        ``what`` (``fetching manifest latest from reg/repo``) starts every error message.
        ``retry=False`` fails at once on 429 / 5xx / lost connections (mirrors fail over;
        chunk uploads recover through the session status instead of a blind replay). The returned
        response must be closed (or read to the end) by the caller.
        """
        # Callers build URLs from a settled endpoint (RepoContext, RegistrySession.endpoint).
        assert not endpoint.http_fallback, f"{what}: endpoint {endpoint.base_url} not settled"
        call = _Call(method, url, endpoint, list(scopes), what, headers or {}, body, retry)
        home = call.home
        auth_retries = 0
        attempt = 0
        while True:
            attempt += 1
            resp = self._follow(call, follow_redirects)
            if resp.status == 401 and Origin.of(resp.url) == home and auth_retries < 2:
                challenges = resp.header_all("WWW-Authenticate")
                new_scopes = self.auth.challenged(home, endpoint.auth_name, call.scopes, challenges)
                if new_scopes is not None and call.replayable:
                    resp.drain()
                    auth_retries += 1
                    call.scopes = new_scopes
                    continue
            if resp.status in _RETRY_STATUS:
                delay = self._retry_delay(resp, attempt, retry and call.replayable)
                if delay is not None:
                    resp.drain()
                    log.debug("%s: %d, retrying in %.1fs", what, resp.status, delay)
                    continue
            else:
                self.backoff.succeeded(home.netloc)
            if resp.status in expect:
                return resp
            raise self.error(resp, what)

    def _retry_delay(self, resp: Response, attempt: int, allowed: bool) -> float | None:
        """Record the failure; the delay before retrying, or None to give up now."""
        origin = Origin.of(resp.url)
        retry_after = parse_retry_after(resp.header("Retry-After"), self._wall_clock())
        policy = self.backoff.policy
        if not allowed or attempt >= policy.max_attempts:
            return None
        if retry_after is not None and retry_after > policy.retry_after_cap:
            return None
        return self.backoff.failed(origin.netloc, retry_after)

    def _follow(self, call: _Call, follow_redirects: bool) -> Response:
        """Send once, following redirects; ``Authorization`` goes only to the home origin."""
        method, url, body = call.method, call.url, call.body
        for _ in range(_MAX_REDIRECTS + 1):
            resp = self._send_once(call, method, url, body)
            location = resp.header("Location")
            if not (follow_redirects and resp.status in _REDIRECTS and location):
                return resp
            resp.drain()
            url = urljoin(resp.url, location)
            if resp.status == 303 or (resp.status in (301, 302) and method == "POST"):
                method, body = "GET", None
            log.debug("%s: redirected to %s", call.what, redact_url(url))
        raise UnavailableError(f"{call.what}: more than {_MAX_REDIRECTS} redirects")

    def _send_once(self, call: _Call, method: str, url: str, body: BodySource) -> Response:
        """Wait for the host's backoff slot, add authorisation, send; retry lost connections."""
        origin = Origin.of(url)
        policy = self.backoff.policy
        attempt = stalls = 0
        while True:
            attempt += 1
            self.backoff.wait(origin.netloc)
            hdrs = dict(call.headers)
            if origin == call.home:
                try:
                    value = self.auth.authorization(call.home, call.endpoint.auth_name, call.scopes)
                except LorryError as exc:
                    # Name the object too: "fetching manifest v1 from r/a: authenticating ..."
                    raise type(exc)(
                        f"{call.what}: {exc}", status=exc.status, url=exc.url, codes=exc.codes
                    ) from exc
                if value:
                    hdrs["Authorization"] = value
            payload = body() if callable(body) else body
            try:
                resp = self.pool.send(method, url, hdrs, payload, what=call.what)
            except UnavailableError as exc:
                # A server that stalls past its deadline is tried once more, not max_attempts
                # times: each try already waited the whole deadline.
                stalls += isinstance(exc, StallError)
                retry = call.retry and call.replayable and attempt < policy.max_attempts
                if not retry or stalls > 1:
                    raise
                delay = self.backoff.failed(origin.netloc, None)
                log.debug("%s: %s; retrying in %.1fs", call.what, exc, delay)
                continue
            log.debug("%s %s -> %d", method, redact_url(url), resp.status)
            budget = parse_budget(resp.header)
            if budget is not None:  # slow down before the registry's budget runs out
                self.backoff.observe(origin.netloc, budget)
            for warning in resp.header_all("Warning"):
                if warning.startswith("299"):
                    log.warning("%s: registry warning: %s", call.what, warning)
            return resp

    def error(self, resp: Response, what: str) -> LorryError:
        """Read a short piece of a failed response's body and turn it into a lorry error."""
        try:
            data, _ = resp.read_capped(MAX_ERROR_BODY)
        except LorryError:
            data = b""
        finally:
            resp.close()
        retry_after = parse_retry_after(resp.header("Retry-After"), self._wall_clock())
        err = error_for_status(
            resp.status,
            resp.reason,
            what=what,
            url=resp.url,
            body=data,
            content_type=resp.header("Content-Type"),
            retry_after=retry_after,
        )
        if resp.status in (429, 503) and retry_after is not None:
            cap = self.backoff.policy.retry_after_cap
            if retry_after > cap:
                err.message += f" (longer than the {cap:g}s lorry waits)"
                err.args = (err.message,)
        if isinstance(err, AuthError) and resp.status == 401 and not err.codes:
            err.message += " (check `lorry login`)"
            err.args = (err.message,)
        return err
