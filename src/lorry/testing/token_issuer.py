"""A small Docker token-auth server: the realm a registry in ``auth: token`` mode sends clients to.

It runs :class:`http.server.ThreadingHTTPServer` in a thread on 127.0.0.1 with a free port, owns
a self-signed certificate (the registry's ``rootcertbundle``) and issues JWTs signed with its key
(RS256 or ES256), the certificate in the ``x5c`` header or its libtrust key ID in ``kid`` — both
accepted by docker-registry 2.8. Supported exchanges (distribution's token and OAuth2 specs):

- ``GET /token?service=…&scope=…`` with optional Basic credentials (anonymous when configured);
  ``offline_token=true`` adds a refresh token;
- ``POST /token`` form: ``grant_type=password`` or ``refresh_token``; ``access_type=offline``
  adds a refresh token; ``post_404=True`` answers 404 so clients fall back to GET.

Requested scopes are intersected with the account's grants (see :mod:`._token_grants`); denied
scopes are dropped, not refused, as real issuers do. Every request is recorded in
:attr:`TokenIssuer.requests`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from lorry.testing._token_grants import Grants, granted_scopes, scope_access
from lorry.testing._token_keys import SigningKey

__all__ = ["Grants", "TokenIssuer", "TokenRequest"]


@dataclass
class TokenRequest:
    """One request the issuer answered: who asked for what, and what was granted."""

    method: str
    account: str | None
    service: str | None
    scopes_requested: list[str]
    scopes_granted: list[str] = field(default_factory=list)
    grant_type: str | None = None
    status: int = 200
    refresh_token_issued: bool = False


class _Refused(Exception):  # noqa: N818 - internal control flow, never leaves the handler
    """Answer the current request with an error status and body."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error = error


class TokenIssuer:
    """A running token server; configure it by constructor arguments or the public attributes.

    ``users`` maps account → password; ``grants`` maps account → {pattern: actions} where a
    pattern is a repository glob (``"repo/*"``) or ``"type:glob"`` (``"registry:catalog"``);
    ``anonymous_grants`` (None: anonymous requests get 401) applies without credentials.
    ``expires_in`` is the token lifetime in seconds; ``token_field`` picks the reply's key(s).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        users: Mapping[str, str] | None = None,
        grants: Mapping[str, Grants] | None = None,
        anonymous_grants: Grants | None = None,
        service: str = "lorry-test-registry",
        issuer: str = "lorry-test-issuer",
        expires_in: int = 300,
        token_field: Literal["token", "access_token", "both"] = "both",
        post_404: bool = False,
        algorithm: Literal["RS256", "ES256"] = "RS256",
        key_header: Literal["x5c", "kid"] = "x5c",
    ) -> None:
        self.users: dict[str, str] = dict(users or {})
        self.grants: dict[str, Grants] = dict(grants or {})
        self.anonymous_grants = anonymous_grants
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.token_field = token_field
        self.post_404 = post_404
        self.key_header = key_header
        self.requests: list[TokenRequest] = []
        self._lock = threading.Lock()
        self._refresh_tokens: dict[str, str] = {}
        self._key = SigningKey.generate(algorithm)
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert_path = workdir / "token-issuer.crt"
        self.cert_path.write_bytes(self._key.cert_pem)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.issuer = self  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.realm = f"{self.url}/token"
        self._thread: threading.Thread | None = None

    def start(self) -> TokenIssuer:
        """Serve requests in a background thread; return self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                args=(0.05,),  # shutdown() waits up to one poll interval
                name=f"token-issuer-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> TokenIssuer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def issue(self, account: str, access: Sequence[Mapping[str, Any]], audience: str) -> str:
        """Sign a JWT for ``account`` with these ``access`` entries for service ``audience``."""
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account,
            "aud": audience,
            "exp": now + self.expires_in,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_hex(16),
            "access": list(access),
        }
        return self._key.sign_jwt(claims, key_header=self.key_header)

    def record(self, request: TokenRequest) -> None:
        """Append to :attr:`requests` (thread-safe)."""
        with self._lock:
            self.requests.append(request)

    def _check_password(self, user: str, password: str) -> str:
        if user not in self.users or self.users[user] != password:
            raise _Refused(401, "invalid_grant", f"bad credentials for {user!r}")
        return user

    def _new_refresh_token(self, account: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._refresh_tokens[token] = account
        return token

    def _account_for_refresh(self, token: str) -> str:
        with self._lock:
            account = self._refresh_tokens.get(token)
        if account is None:
            raise _Refused(401, "invalid_grant", "unknown refresh token")
        return account

    def _grants_for(self, account: str | None) -> Grants:
        if account is None:
            if self.anonymous_grants is None:
                raise _Refused(401, "unauthorized", "anonymous access is not allowed")
            return self.anonymous_grants
        return self.grants.get(account, {})

    def answer(self, rec: TokenRequest, offline: bool) -> dict[str, Any]:
        """Grant the recorded request's scopes and build the JSON reply."""
        granted = granted_scopes(rec.scopes_requested, self._grants_for(rec.account))
        rec.scopes_granted = granted
        token = self.issue(rec.account or "", scope_access(granted), rec.service or self.service)
        reply: dict[str, Any] = {"expires_in": self.expires_in, "issued_at": _now_rfc3339()}
        if self.token_field in ("token", "both"):
            reply["token"] = token
        if self.token_field in ("access_token", "both"):
            reply["access_token"] = token
        if offline and rec.account is not None:
            reply["refresh_token"] = self._new_refresh_token(rec.account)
            rec.refresh_token_issued = True
        return reply


def _now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _split_scopes(values: Sequence[str]) -> list[str]:
    return [s for value in values for s in value.split(" ") if s]


class _Handler(BaseHTTPRequestHandler):
    """Parses GET and POST token requests and hands them to the issuer."""

    protocol_version = "HTTP/1.1"

    @property
    def _issuer(self) -> TokenIssuer:
        issuer: TokenIssuer = self.server.issuer  # type: ignore[attr-defined]
        return issuer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests inspect :attr:`TokenIssuer.requests` instead."""

    def do_GET(self) -> None:
        """``GET /token``: Basic credentials or anonymous."""
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        rec = TokenRequest(
            "GET", None, _first(query, "service"), _split_scopes(query.get("scope", []))
        )
        self._serve(url.path, rec, self._basic_account, _first(query, "offline_token") == "true")

    def do_POST(self) -> None:
        """``POST /token``: the OAuth2 password and refresh-token grants."""
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        rec = TokenRequest(
            "POST", None, _first(form, "service"), _split_scopes(form.get("scope", []))
        )
        rec.grant_type = _first(form, "grant_type")
        if self._issuer.post_404:
            rec.status = 404
            self._issuer.record(rec)
            self._send(404, {"errors": [{"code": "NOT_FOUND", "message": "POST not supported"}]})
            return
        self._serve(
            urllib.parse.urlsplit(self.path).path,
            rec,
            lambda: self._form_account(form, rec.grant_type),
            _first(form, "access_type") == "offline",
        )

    def _serve(
        self, path: str, rec: TokenRequest, account: Callable[[], str | None], offline: bool
    ) -> None:
        try:
            if path != "/token":
                raise _Refused(404, "not_found", f"no such endpoint {path}")
            rec.account = account()
            reply = self._issuer.answer(rec, offline)
        except _Refused as refused:
            rec.status = refused.status
            self._issuer.record(rec)
            body = {
                "error": refused.error,
                "errors": [{"code": "UNAUTHORIZED", "message": str(refused)}],
            }
            self._send(refused.status, body)
            return
        self._issuer.record(rec)
        self._send(200, reply)

    def _basic_account(self) -> str | None:
        header = self.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except ValueError as err:
            raise _Refused(400, "invalid_request", "malformed Basic credentials") from err
        return self._issuer._check_password(user, password)

    def _form_account(self, form: Mapping[str, list[str]], grant_type: str | None) -> str:
        if grant_type == "password":
            return self._issuer._check_password(
                _first(form, "username") or "", _first(form, "password") or ""
            )
        if grant_type == "refresh_token":
            return self._issuer._account_for_refresh(_first(form, "refresh_token") or "")
        raise _Refused(400, "unsupported_grant_type", f"grant_type {grant_type!r}")

    def _send(self, status: int, body: Mapping[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _first(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None
