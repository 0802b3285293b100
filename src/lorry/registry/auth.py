"""Registry authentication: anonymous, Basic, and Bearer tokens from a token service.

The flow reacts to challenges instead of probing ``/v2/`` first (some registries answer 200
there anonymously and challenge only on real requests): a request goes out with whatever
authorisation is known for its origin; a 401 carries ``WWW-Authenticate``, which is remembered
per origin, and the request is retried once with a Basic header or a Bearer token for exactly
the scopes it needs. Tokens are cached by (realm, service, scopes, account) until shortly before
they expire. An ``insufficient_scope`` challenge adds the scopes it names and retries once.

Credentials come from a lookup function (by default :func:`lorry.registry.credentials.lookup`);
an identity token is exchanged through the OAuth2 ``grant_type=refresh_token`` POST, falling back
to the older GET form when the token service answers 404. Credentials and tokens are never sent
over plain HTTP to a host that is not loopback or marked insecure.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from lorry.errors import AuthError, LorryError
from lorry.oci._json import parse_json
from lorry.registry.challenge import Challenge, parse_challenges
from lorry.registry.config import RegistryConfig, is_loopback
from lorry.registry.errors import MAX_ERROR_BODY, error_for_status
from lorry.registry.redact import get_logger, redact_url, remember_secret
from lorry.registry.session import HttpPool, Origin

__all__ = ["Authenticator", "CredentialLookup", "CredentialsLike", "scope_pull", "scope_push"]

log = get_logger(__name__)

_DEFAULT_EXPIRES_IN = 60
_CLIENT_ID = "lorry"


class CredentialsLike(Protocol):
    """What auth needs from a credentials record (``lorry.registry.credentials.Credentials``)."""

    @property
    def username(self) -> str | None:
        """The user name, or None for an identity token alone."""

    @property
    def password(self) -> str | None:
        """The password or personal access token."""

    @property
    def identity_token(self) -> str | None:
        """An OAuth2 refresh token (docker's ``identitytoken``)."""


#: Finds the credentials stored for a registry name (``docker.io``, ``localhost:5000``).
CredentialLookup = Callable[[str], CredentialsLike | None]


def scope_pull(repository: str) -> str:
    """The token scope for reading ``repository``."""
    return f"repository:{repository}:pull"


def scope_push(repository: str) -> str:
    """The token scope for reading and writing ``repository``."""
    return f"repository:{repository}:pull,push"


@dataclass
class _Token:
    """A bearer token and the monotonic time it should no longer be used after."""

    value: str
    expires_at: float


class Authenticator:
    """Per-origin challenges, a token cache, and the token-service exchange."""

    def __init__(
        self,
        pool: HttpPool,
        lookup: CredentialLookup,
        config: RegistryConfig,
        clock: Callable[[], float],
    ) -> None:
        self._pool = pool
        self._lookup = lookup
        self._config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._challenges: dict[Origin, Challenge] = {}
        self._tokens: dict[tuple[str, str, frozenset[str], str], _Token] = {}
        self._refresh: dict[tuple[str, str, str], str] = {}
        self._creds: dict[str, CredentialsLike | None] = {}
        self._warned_plain: set[str] = set()

    def knows(self, origin: Origin) -> bool:
        """True once ``origin`` has challenged (so requests carry authorisation up front)."""
        with self._lock:
            return origin in self._challenges

    def authorization(self, origin: Origin, auth_name: str, scopes: Sequence[str]) -> str | None:
        """The ``Authorization`` value for a request to ``origin``, or None for anonymous."""
        with self._lock:
            challenge = self._challenges.get(origin)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self._credentials(auth_name)
            if creds is None or creds.password is None:
                return None
            self._check_transport(origin, auth_name)
            raw = f"{creds.username or ''}:{creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if challenge.scheme == "bearer":
            return "Bearer " + self._token(challenge, origin, auth_name, scopes)
        return None

    def challenged(
        self, origin: Origin, auth_name: str, scopes: Sequence[str], headers: Sequence[str]
    ) -> list[str] | None:
        """Learn from a 401; return the scopes to retry with, or None when retrying is futile.

        The token the request carried (if any) is dropped from the cache, since the registry
        refused it (expired or revoked); ``insufficient_scope`` adds the challenge's scopes.
        """
        challenges = parse_challenges(headers)
        usable = [c for c in challenges if c.scheme == "bearer" and c.realm]
        usable += [c for c in challenges if c.scheme == "basic"]
        if not usable:
            return None
        challenge = usable[0]
        new_scopes = list(scopes)
        if challenge.error == "insufficient_scope":
            new_scopes += [s for s in challenge.scopes if s not in new_scopes]
        with self._lock:
            previous = self._challenges.get(origin)
            self._challenges[origin] = challenge
            if challenge.scheme == "bearer":
                key = _token_key(challenge, new_scopes, auth_name)
                self._tokens.pop(key, None)
                self._tokens.pop(_token_key(challenge, scopes, auth_name), None)
        if challenge.scheme == "basic" and self._credentials(auth_name) is None:
            return None
        del previous
        return new_scopes

    def invalidate(self) -> None:
        """Forget cached tokens and credentials (after a login or logout)."""
        with self._lock:
            self._tokens.clear()
            self._creds.clear()

    def _credentials(self, auth_name: str) -> CredentialsLike | None:
        """Credentials for ``auth_name``, looked up once per session."""
        with self._lock:
            if auth_name in self._creds:
                return self._creds[auth_name]
        creds = self._lookup(auth_name)
        if creds is not None:
            remember_secret(creds.password)
            remember_secret(creds.identity_token)
        with self._lock:
            self._creds[auth_name] = creds
        return creds

    def _check_transport(self, origin: Origin, auth_name: str) -> None:
        """Refuse to send secrets in clear to a host that is not loopback or marked insecure.

        A host the user named insecure gets them, with one warning per host: its traffic can
        be read by anyone on the path.
        """
        if origin.scheme == "https":
            return
        if not self._config.allows_plain_http(origin.netloc):
            raise AuthError(
                f"authenticating to {auth_name}: refusing to send credentials over plain HTTP "
                f"to {origin.netloc}"
            )
        if is_loopback(origin.netloc):
            return
        with self._lock:
            first = origin.netloc not in self._warned_plain
            self._warned_plain.add(origin.netloc)
        if first:
            log.warning(
                "sending credentials for %s over plain HTTP to %s (marked insecure): "
                "anyone on the network path can read them",
                auth_name,
                origin.netloc,
            )

    def _token(
        self, challenge: Challenge, origin: Origin, auth_name: str, scopes: Sequence[str]
    ) -> str:
        """A valid cached token for these scopes, or a fresh one from the token service."""
        key = _token_key(challenge, scopes, auth_name)
        with self._lock:
            cached = self._tokens.get(key)
        if cached is not None and self._clock() < cached.expires_at:
            return cached.value
        self._check_transport(origin, auth_name)
        token = self._fetch(challenge, auth_name, scopes)
        with self._lock:
            self._tokens[key] = token
        return token.value

    def _fetch(self, challenge: Challenge, auth_name: str, scopes: Sequence[str]) -> _Token:
        """Exchange credentials (or nothing) for a token at the challenge's realm."""
        realm = challenge.realm or ""
        parts = urlsplit(realm)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AuthError(f"authenticating to {auth_name}: bad token realm {redact_url(realm)}")
        creds = self._credentials(auth_name)
        if creds is not None:
            self._check_transport(Origin.of(realm), auth_name)
        service = challenge.service or ""
        refresh = self._refresh_token(realm, service, auth_name, creds)
        what = f"authenticating to {auth_name}"
        if refresh:
            doc = self._post_refresh(
                realm=realm,
                service=service,
                scopes=scopes,
                refresh=refresh,
                creds=creds,
                what=what,
            )
            if doc is not None:
                return self._accept(doc, realm, service, auth_name)
        params: list[tuple[str, str]] = [("service", service)] if service else []
        if creds is not None and creds.username:
            params.append(("account", creds.username))
        params += [("scope", s) for s in scopes]
        url = realm + ("&" if "?" in realm else "?") + urlencode(params) if params else realm
        headers: dict[str, str] = {}
        if creds is not None and (creds.password or creds.identity_token):
            user = creds.username or "<token>"
            secret = creds.password or creds.identity_token or ""
            raw = f"{user}:{secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        doc = self._exchange("GET", url, headers, None, what=what)
        if doc is None:
            raise AuthError(f"{what}: token service at {redact_url(realm)} returned no token")
        return self._accept(doc, realm, service, auth_name)

    def _refresh_token(
        self, realm: str, service: str, auth_name: str, creds: CredentialsLike | None
    ) -> str | None:
        """The refresh token to use: one issued earlier this session, else the identity token."""
        with self._lock:
            issued = self._refresh.get((realm, service, auth_name))
        return issued or (creds.identity_token if creds is not None else None)

    def _post_refresh(
        self,
        *,
        realm: str,
        service: str,
        scopes: Sequence[str],
        refresh: str,
        creds: CredentialsLike | None,
        what: str,
    ) -> dict[str, Any] | None:
        """The OAuth2 refresh-token POST; None when the service does not support it (404)."""
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": service,
            "client_id": _CLIENT_ID,
            "scope": " ".join(scopes),
        }
        if creds is not None and creds.username:
            form["username"] = creds.username
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self._exchange(
            "POST", realm, headers, urlencode(form).encode(), what=what, none_on=404
        )

    def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        *,
        what: str,
        none_on: int | None = None,
    ) -> dict[str, Any] | None:
        """One request to the token service; its JSON reply, or None on ``none_on``."""
        with self._pool.send(method, url, headers, body, what=what) as resp:
            data, _ = resp.read_capped(MAX_ERROR_BODY)
        log.debug("token %s %s -> %d", method, redact_url(url), resp.status)
        if none_on is not None and resp.status in (none_on, 405):
            return None
        if resp.status != 200:
            raise _as_auth(
                error_for_status(
                    resp.status,
                    resp.reason,
                    what=f"{what}: token service",
                    url=url,
                    body=data,
                    content_type=resp.header("Content-Type"),
                )
            )
        try:
            doc = parse_json(data)
        except ValueError as exc:
            raise AuthError(f"{what}: token service sent a reply that is not JSON") from exc
        return doc if isinstance(doc, dict) else None

    def _accept(self, doc: dict[str, Any], realm: str, service: str, auth_name: str) -> _Token:
        """Turn a token-service reply into a cached token; keep any refresh token it carries."""
        value = doc.get("token") or doc.get("access_token")
        if not isinstance(value, str) or not value:
            raise AuthError(f"authenticating to {auth_name}: token service sent no token")
        remember_secret(value)
        refresh = doc.get("refresh_token")
        if isinstance(refresh, str) and refresh:
            remember_secret(refresh)
            with self._lock:
                self._refresh[(realm, service, auth_name)] = refresh
        try:
            expires_in = float(doc.get("expires_in") or _DEFAULT_EXPIRES_IN)
        except (TypeError, ValueError):
            expires_in = _DEFAULT_EXPIRES_IN
        margin = min(10.0, expires_in / 10)
        return _Token(value, self._clock() + expires_in - margin)


def _token_key(
    challenge: Challenge, scopes: Sequence[str], auth_name: str
) -> tuple[str, str, frozenset[str], str]:
    """The token-cache key: a token is good for exactly one realm, service and scope set."""
    return (challenge.realm or "", challenge.service or "", frozenset(scopes), auth_name)


def _as_auth(err: LorryError) -> LorryError:
    """Token-service 4xx answers are auth failures whatever their body says."""
    if err.status is not None and 400 <= err.status < 500 and err.status != 429:
        return AuthError(str(err), status=err.status, url=err.url, codes=err.codes)
    return err
