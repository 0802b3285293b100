"""Registry credentials read and written the way docker and containers/image do.

Lookup order for a registry host (first hit wins):

1. the containers auth files: ``$REGISTRY_AUTH_FILE``, else
   ``$XDG_RUNTIME_DIR/containers/auth.json``; then ``$XDG_CONFIG_HOME/containers/auth.json``
   (default ``~/.config``);
2. docker's ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``).

Within one file: ``credHelpers[host]``, then ``credsStore``, then ``auths[host]`` (``auth`` is
base64 ``user:password``; ``username``/``password`` and ``identitytoken`` are also read). Keys
are matched as docker matches them: ``docker.io``, ``index.docker.io`` and
``registry-1.docker.io`` are all Docker Hub, whose canonical key is
``https://index.docker.io/v1/``, and a key written as a URL (``https://host/v1/``) matches its
host. A namespaced key (``quay.io/org``, containers-auth.json(5)) only matches when the caller
names a repository under it, and then beats the bare host.

:func:`store` and :func:`erase` act where ``docker login``/``logout`` do: through the
configured credential helper if one applies, else in ``auths`` of docker's config.json, which is
rewritten atomically with mode 0600 and every other key kept. Secrets never appear in a repr,
a log line or an error message. All functions block (files, helper processes); async callers
run them in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lorry.errors import InvalidInputError, LorryError
from lorry.registry._credhelper import (
    TOKEN_USERNAME,
    helper_erase,
    helper_get,
    helper_store,
    mask,
)

__all__ = [
    "DOCKER_HUB_HOST",
    "DOCKER_HUB_SERVER",
    "Credentials",
    "auth_file_paths",
    "docker_config_path",
    "erase",
    "lookup",
    "normalize_host",
    "redact",
    "server_key",
    "store",
]

log = logging.getLogger(__name__)

#: The host every Docker Hub alias normalises to.
DOCKER_HUB_HOST = "index.docker.io"
#: The key docker uses for Docker Hub in ``auths`` and towards credential helpers.
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True, repr=False)
class Credentials:
    """A username with a password and/or an identity token (OAuth2 refresh token)."""

    username: str = ""
    password: str = ""
    identity_token: str | None = None

    def __repr__(self) -> str:
        pw = "'***'" if self.password else "''"
        tok = "'***'" if self.identity_token else "None"
        return f"Credentials(username={self.username!r}, password={pw}, identity_token={tok})"

    def secrets(self) -> tuple[str, ...]:
        """Every string that must never be shown: password, token and the basic-auth forms."""
        found = [s for s in (self.password, self.identity_token) if s]
        if self.password:
            found.append(_b64(f"{self.username}:{self.password}"))
        return tuple(found)

    def basic_auth(self) -> str:
        """The value of an ``Authorization: Basic`` header for these credentials."""
        return "Basic " + _b64(f"{self.username}:{self.password}")


def redact(text: str, creds: Credentials | None) -> str:
    """``text`` with every secret of ``creds`` masked as ``***``."""
    return text if creds is None else mask(text, creds.secrets())


def normalize_host(key: str) -> str:
    """The registry host of an ``auths``/``credHelpers`` key or host name, docker-style."""
    rest = key.strip()
    for scheme in ("https://", "http://"):
        if rest.lower().startswith(scheme):
            rest = rest[len(scheme) :]
            break
    host = rest.split("/", 1)[0].lower()
    return DOCKER_HUB_HOST if host in _HUB_ALIASES else host


def server_key(registry_host: str) -> str:
    """The key docker writes for ``registry_host`` (``https://index.docker.io/v1/`` for Hub)."""
    host = normalize_host(registry_host)
    return DOCKER_HUB_SERVER if host == DOCKER_HUB_HOST else host


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def auth_file_paths(env: Mapping[str, str] | None = None) -> list[Path]:
    """The containers auth files searched before docker's config, in order."""
    env = os.environ if env is None else env
    paths: list[Path] = []
    if env.get("REGISTRY_AUTH_FILE"):
        paths.append(Path(env["REGISTRY_AUTH_FILE"]))
    elif env.get("XDG_RUNTIME_DIR"):
        paths.append(Path(env["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    config_home = env.get("XDG_CONFIG_HOME") or str(_home(env) / ".config")
    paths.append(Path(config_home, "containers", "auth.json"))
    return paths


def docker_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Docker's ``config.json``: under ``$DOCKER_CONFIG``, else ``~/.docker``."""
    env = os.environ if env is None else env
    base = env.get("DOCKER_CONFIG") or str(_home(env) / ".docker")
    return Path(base, "config.json")


def lookup(
    registry_host: str, *, repository: str | None = None, env: Mapping[str, str] | None = None
) -> Credentials | None:
    """The credentials configured for ``registry_host`` (optionally a repository on it), or None.

    Raises InvalidInputError for a malformed file (naming it) and AuthError when a configured
    credential helper is missing or fails (naming the helper).
    """
    env = os.environ if env is None else env
    host = normalize_host(registry_host)
    for path in [*auth_file_paths(env), docker_config_path(env)]:
        doc = _load(path)
        if doc is not None:
            creds = _lookup_in(doc, path, host, repository, env)
            if creds is not None:
                return creds
    log.debug("no credentials for %s", host)
    return None


def _lookup_in(
    doc: dict[str, Any], path: Path, host: str, repository: str | None, env: Mapping[str, str]
) -> Credentials | None:
    """The credentials one parsed file gives for ``host``: helper first, then ``auths``."""
    helper = _helper_for(doc, host)
    if helper is not None:
        got = helper_get(helper, server_key(host), env)
        if got is not None:
            log.debug("credentials for %s from helper %s", host, helper)
            username, secret = got
            if username == TOKEN_USERNAME:
                return Credentials(identity_token=secret)
            return Credentials(username=username, password=secret)
    auths = doc.get("auths", {})
    key = _best_key(auths, host, repository)
    if key is None:
        return None
    creds = _decode_entry(auths[key], path, key)
    if creds is not None:
        log.debug("credentials for %s from %s (key %s)", host, path, key)
    return creds


def _helper_for(doc: dict[str, Any], host: str) -> str | None:
    """The helper name that applies to ``host``: ``credHelpers`` entry, else ``credsStore``."""
    for key, name in doc.get("credHelpers", {}).items():
        if normalize_host(key) == host and name:
            return str(name)
    store_name = doc.get("credsStore")
    return str(store_name) if store_name else None


def _key_rank(key: str, host: str, repository: str | None) -> int | None:
    """How well an ``auths`` key fits: larger is more specific; None when it does not apply."""
    if "://" in key:
        return 0 if normalize_host(key) == host else None
    name, _, namespace = key.partition("/")
    if normalize_host(name) != host:
        return None
    if not namespace:
        return 1
    if repository is not None and f"{repository}/".startswith(f"{namespace.rstrip('/')}/"):
        return 2 + namespace.count("/")
    return None


def _best_key(auths: dict[str, Any], host: str, repository: str | None) -> str | None:
    """The most specific key of ``auths`` that applies to ``host``/``repository``."""
    ranked = [(r, k) for k in auths if (r := _key_rank(k, host, repository)) is not None]
    return max(ranked)[1] if ranked else None


def _decode_entry(entry: dict[str, Any], path: Path, key: str) -> Credentials | None:
    """The credentials of one ``auths`` entry, or None when it holds none (docker's ``{}``)."""
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    token = entry.get("identitytoken") or None
    encoded = entry.get("auth")
    if encoded:
        try:
            raw = base64.b64decode(str(encoded) + "=" * (-len(str(encoded)) % 4), validate=True)
            username, sep, password = raw.decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            sep = ""
        if not sep:
            raise InvalidInputError(
                f"reading credentials file {path}: auths[{key!r}].auth is not base64 user:password"
            )
    if not (username or password or token):
        return None
    return Credentials(username, password, str(token) if token else None)


def _load(path: Path) -> dict[str, Any] | None:
    """The parsed file, None when it does not exist; InvalidInputError when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8"
        raise InvalidInputError(f"reading credentials file {path}: {reason}") from None
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"reading credentials file {path}: not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    return _check_shape(doc, path)


def _check_shape(doc: object, path: Path) -> dict[str, Any]:
    """``doc`` itself; InvalidInputError when its known keys have the wrong JSON types."""
    problem = None
    if not isinstance(doc, dict):
        problem = "top level is not an object"
    elif not isinstance(doc.get("auths", {}), dict):
        problem = '"auths" is not an object'
    elif not all(isinstance(v, dict) for v in doc.get("auths", {}).values()):
        problem = 'an entry of "auths" is not an object'
    elif not isinstance(doc.get("credHelpers", {}), dict):
        problem = '"credHelpers" is not an object'
    elif not isinstance(doc.get("credsStore", ""), str):
        problem = '"credsStore" is not a string'
    if problem or not isinstance(doc, dict):
        raise InvalidInputError(f"reading credentials file {path}: {problem}")
    return doc


def store(registry_host: str, creds: Credentials, *, env: Mapping[str, str] | None = None) -> None:
    """Save ``creds`` for ``registry_host`` as ``docker login`` does: helper, else config.json."""
    env = os.environ if env is None else env
    host = normalize_host(registry_host)
    path = docker_config_path(env)
    doc = _load(path) or {}
    helper = _helper_for(doc, host)
    if helper is not None:
        if creds.identity_token:
            helper_store(helper, server_key(host), TOKEN_USERNAME, creds.identity_token, env)
        else:
            helper_store(helper, server_key(host), creds.username, creds.password, env)
        log.debug("stored credentials for %s in helper %s", host, helper)
        if _drop_host_keys(doc, host, keep_empty=True):
            _write(path, doc)
        return
    auths = doc.setdefault("auths", {})
    entry = {
        k: v
        for k, v in auths.get(server_key(host), {}).items()
        if k not in ("auth", "username", "password", "identitytoken")
    }
    if creds.username or creds.password:
        entry["auth"] = _b64(f"{creds.username}:{creds.password}")
    if creds.identity_token:
        entry["identitytoken"] = creds.identity_token
    auths[server_key(host)] = entry
    _write(path, doc)
    log.debug("stored credentials for %s in %s", host, path)


def erase(registry_host: str, *, env: Mapping[str, str] | None = None) -> bool:
    """Forget the credentials of ``registry_host`` as ``docker logout`` does; False if none."""
    env = os.environ if env is None else env
    host = normalize_host(registry_host)
    path = docker_config_path(env)
    doc = _load(path)
    if doc is None:
        return False
    helper = _helper_for(doc, host)
    erased = helper is not None and helper_erase(helper, server_key(host), env)
    if _drop_host_keys(doc, host, keep_empty=False):
        _write(path, doc)
        erased = True
    log.debug("erased credentials for %s: %s", host, erased)
    return erased


def _drop_host_keys(doc: dict[str, Any], host: str, *, keep_empty: bool) -> bool:
    """Remove the secrets (or whole entries) stored under every host-level key of ``host``."""
    auths = doc.get("auths", {})
    changed = False
    for key in [k for k in auths if _key_rank(k, host, None) is not None]:
        if not keep_empty:
            del auths[key]
            changed = True
            continue
        secret_keys = {"auth", "password", "identitytoken"} & auths[key].keys()
        for name in secret_keys:
            del auths[key][name]
        changed = changed or bool(secret_keys)
    return changed


def _write(path: Path, doc: dict[str, Any]) -> None:
    """Replace ``path`` atomically (temp file, fsync, rename) with mode 0600."""
    target = Path(os.path.realpath(path))
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent="\t")
                fh.write("\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise LorryError(f"writing credentials file {path}: {exc.strerror}") from None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
