"""Runs docker credential helpers (``docker-credential-<name>``) by their stdin/stdout protocol.

The protocol (docker/docker-credential-helpers): the action is the only argument; ``store``
reads ``{"ServerURL", "Username", "Secret"}`` as JSON on stdin; ``get`` and ``erase`` read the
bare server URL on stdin; ``get`` answers with the same JSON object on stdout. A helper reports
failure with a non-zero exit status and a message on stdout, and the message
``credentials not found in native keychain`` means "nothing stored" rather than an error. A
``Username`` of ``<token>`` marks the secret as an identity token.

Helpers are separate programs that may talk to a desktop keychain, so each call is bounded by
:data:`HELPER_TIMEOUT`; a call blocks, so async callers run it in a worker thread.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping

from lorry.errors import AuthError

__all__ = [
    "HELPER_PREFIX",
    "HELPER_TIMEOUT",
    "NOT_FOUND_MESSAGE",
    "TOKEN_USERNAME",
    "helper_erase",
    "helper_get",
    "helper_store",
    "mask",
]

#: Executable name prefix of every credential helper.
HELPER_PREFIX = "docker-credential-"
#: Seconds a helper may run before lorry gives up on it.
HELPER_TIMEOUT = 60.0
#: The helper's answer when it has no credentials for a server.
NOT_FOUND_MESSAGE = "credentials not found in native keychain"
#: The username that marks the secret as an identity (OAuth2 refresh) token.
TOKEN_USERNAME = "<token>"

_MAX_MESSAGE = 300


def mask(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every non-empty secret replaced by ``***``, longest secret first."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def helper_get(name: str, server_url: str, env: Mapping[str, str]) -> tuple[str, str] | None:
    """Ask helper ``name`` for ``server_url``: ``(username, secret)``, or None when not stored."""
    out = _run(name, "get", server_url.encode(), server_url, env, secrets=())
    if out is None:
        return None
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("Secret"), str):
        raise AuthError(f"credential helper {HELPER_PREFIX}{name} get {server_url}: bad answer")
    username = doc.get("Username")
    return (username if isinstance(username, str) else ""), doc["Secret"]


def helper_store(
    name: str, server_url: str, username: str, secret: str, env: Mapping[str, str]
) -> None:
    """Hand ``username`` and ``secret`` for ``server_url`` to helper ``name``."""
    payload = json.dumps({"ServerURL": server_url, "Username": username, "Secret": secret})
    if _run(name, "store", payload.encode(), server_url, env, secrets=(secret,)) is None:
        raise AuthError(f"credential helper {HELPER_PREFIX}{name} store {server_url}: not found")


def helper_erase(name: str, server_url: str, env: Mapping[str, str]) -> bool:
    """Tell helper ``name`` to forget ``server_url``; False when it had nothing stored."""
    return _run(name, "erase", server_url.encode(), server_url, env, secrets=()) is not None


def _run(
    name: str,
    action: str,
    stdin: bytes,
    server_url: str,
    env: Mapping[str, str],
    *,
    secrets: tuple[str, ...],
) -> str | None:
    """Run one helper action; its stdout, or None for "credentials not found"."""
    program = HELPER_PREFIX + name
    what = f"credential helper {program} {action} {server_url}"
    path = shutil.which(program, path=env.get("PATH", os.defpath))
    if path is None:
        raise AuthError(f"{what}: {program} not found on PATH")
    try:
        proc = subprocess.run(
            [path, action],
            input=stdin,
            capture_output=True,
            env=dict(env),
            timeout=HELPER_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AuthError(f"{what}: no answer within {HELPER_TIMEOUT:g} s") from None
    except OSError as exc:
        raise AuthError(f"{what}: cannot run it ({exc.strerror})") from None
    out = proc.stdout.decode("utf-8", "replace").strip()
    if proc.returncode == 0:
        return out
    if NOT_FOUND_MESSAGE in out:
        return None
    detail = out or proc.stderr.decode("utf-8", "replace").strip() or "no message"
    detail = mask(detail, secrets)[:_MAX_MESSAGE]
    raise AuthError(f"{what}: exit status {proc.returncode}: {detail}")
