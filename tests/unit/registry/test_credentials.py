"""Tests of lorry.registry.credentials: docker config.json, auth.json and credential helpers."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from lorry.errors import AuthError, InvalidInputError, LorryError
from lorry.registry import credentials as cr
from lorry.registry.credentials import Credentials

HELPERS = Path(__file__).resolve().parents[2] / "helpers"
PASSWORD = "s3cr3t-Pa55word"
TOKEN = "refresh-token-abc123"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An isolated environment: a fake HOME, the test helper on PATH, no auth file overrides."""
    (tmp_path / "cred").mkdir()
    return {
        "HOME": str(tmp_path / "home"),
        "PATH": f"{HELPERS}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
        "LORRYTEST_CRED_DIR": str(tmp_path / "cred"),
    }


def docker_config(env: dict[str, str]) -> Path:
    return Path(env["HOME"], ".docker", "config.json")


def write_json(path: Path, doc: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def helper_db(env: dict[str, str]) -> dict[str, dict[str, str]]:
    path = Path(env["LORRYTEST_CRED_DIR"], "store.json")
    return json.loads(path.read_text()) if path.exists() else {}


# -- Credentials and host keys ------------------------------------------------------------------


def test_repr_and_str_hide_secrets() -> None:
    creds = Credentials("bob", PASSWORD, TOKEN)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert PASSWORD not in text and TOKEN not in text
        assert "bob" in text
    assert (
        repr(Credentials("bob")) == "Credentials(username='bob', password='', identity_token=None)"
    )


def test_redact_masks_password_token_and_basic_form() -> None:
    creds = Credentials("bob", PASSWORD, TOKEN)
    text = f"a {PASSWORD} b {TOKEN} c {creds.basic_auth()}"
    out = cr.redact(text, creds)
    assert PASSWORD not in out and TOKEN not in out and b64(f"bob:{PASSWORD}") not in out
    assert cr.redact("plain", None) == "plain"


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("docker.io", "index.docker.io"),
        ("registry-1.docker.io", "index.docker.io"),
        ("https://index.docker.io/v1/", "index.docker.io"),
        ("http://Example.COM:5000", "example.com:5000"),
        ("https://example.com/v2/", "example.com"),
        ("localhost:5000", "localhost:5000"),
    ],
)
def test_normalize_host(key: str, host: str) -> None:
    assert cr.normalize_host(key) == host


def test_server_key() -> None:
    assert cr.server_key("docker.io") == "https://index.docker.io/v1/"
    assert cr.server_key("localhost:5000") == "localhost:5000"


# -- lookup from files ----------------------------------------------------------------------------


def test_lookup_nothing_configured(env: dict[str, str]) -> None:
    assert cr.lookup("example.com", env=env) is None


def test_lookup_auth_field(env: dict[str, str]) -> None:
    write_json(docker_config(env), {"auths": {"example.com": {"auth": b64(f"bob:{PASSWORD}")}}})
    assert cr.lookup("example.com", env=env) == Credentials("bob", PASSWORD)
    assert cr.lookup("other.example", env=env) is None


def test_lookup_password_with_colon_and_unpadded_base64(env: dict[str, str]) -> None:
    encoded = b64("bob:pa:ss:x").rstrip("=")
    write_json(docker_config(env), {"auths": {"example.com": {"auth": encoded}}})
    assert cr.lookup("example.com", env=env) == Credentials("bob", "pa:ss:x")


def test_lookup_username_password_fields_and_identity_token(env: dict[str, str]) -> None:
    write_json(
        docker_config(env),
        {
            "auths": {
                "a.example": {"username": "u", "password": PASSWORD},
                "b.example": {"auth": b64("u:"), "identitytoken": TOKEN},
            }
        },
    )
    assert cr.lookup("a.example", env=env) == Credentials("u", PASSWORD)
    assert cr.lookup("b.example", env=env) == Credentials("u", "", TOKEN)


def test_lookup_docker_hub_aliases(env: dict[str, str]) -> None:
    write_json(
        docker_config(env),
        {"auths": {"https://index.docker.io/v1/": {"auth": b64(f"hub:{PASSWORD}")}}},
    )
    for alias in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert cr.lookup(alias, env=env) == Credentials("hub", PASSWORD)


def test_lookup_url_keys_match_host(env: dict[str, str]) -> None:
    write_json(
        docker_config(env),
        {
            "auths": {
                "https://reg.example:5000/v1/": {"auth": b64("a:1")},
                "http://plain.example": {"auth": b64("b:2")},
            }
        },
    )
    assert cr.lookup("reg.example:5000", env=env) == Credentials("a", "1")
    assert cr.lookup("plain.example", env=env) == Credentials("b", "2")


def test_lookup_empty_entry_is_no_credentials(env: dict[str, str]) -> None:
    write_json(docker_config(env), {"auths": {"example.com": {}}})
    assert cr.lookup("example.com", env=env) is None


def test_namespaced_keys_need_a_repository(env: dict[str, str]) -> None:
    write_json(
        docker_config(env),
        {
            "auths": {
                "quay.io": {"auth": b64("host:1")},
                "quay.io/org": {"auth": b64("org:2")},
                "quay.io/org/app": {"auth": b64("app:3")},
            }
        },
    )
    assert cr.lookup("quay.io", env=env) == Credentials("host", "1")
    assert cr.lookup("quay.io", repository="org/other", env=env) == Credentials("org", "2")
    assert cr.lookup("quay.io", repository="org/app", env=env) == Credentials("app", "3")
    assert cr.lookup("quay.io", repository="organisation/x", env=env) == Credentials("host", "1")


def test_docker_config_env_var(env: dict[str, str], tmp_path: Path) -> None:
    env["DOCKER_CONFIG"] = str(tmp_path / "dc")
    write_json(tmp_path / "dc" / "config.json", {"auths": {"h.example": {"auth": b64("d:1")}}})
    assert cr.lookup("h.example", env=env) == Credentials("d", "1")


def test_auth_json_precedence(env: dict[str, str], tmp_path: Path) -> None:
    write_json(docker_config(env), {"auths": {"h.example": {"auth": b64("docker:1")}}})
    xdg_config = Path(env["HOME"], ".config", "containers", "auth.json")
    write_json(xdg_config, {"auths": {"h.example": {"auth": b64("xdgconfig:2")}}})
    assert cr.lookup("h.example", env=env) == Credentials("xdgconfig", "2")

    env["XDG_RUNTIME_DIR"] = str(tmp_path / "run")
    write_json(
        tmp_path / "run" / "containers" / "auth.json",
        {"auths": {"h.example": {"auth": b64("runtime:3")}}},
    )
    assert cr.lookup("h.example", env=env) == Credentials("runtime", "3")

    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "explicit.json")
    write_json(tmp_path / "explicit.json", {"auths": {"h.example": {"auth": b64("explicit:4")}}})
    assert cr.lookup("h.example", env=env) == Credentials("explicit", "4")
    # A host the first file does not know falls through to the next file.
    assert cr.lookup("other.example", env=env) is None
    write_json(docker_config(env), {"auths": {"other.example": {"auth": b64("docker:5")}}})
    assert cr.lookup("other.example", env=env) == Credentials("docker", "5")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"auths": ', "not valid JSON"),
        ("[1, 2]", "top level is not an object"),
        ('{"auths": []}', '"auths" is not an object'),
        ('{"auths": {"h": "x"}}', "entry of"),
        ('{"credHelpers": "x"}', '"credHelpers" is not an object'),
        ('{"credsStore": 3}', '"credsStore" is not a string'),
        (json.dumps({"auths": {"h.example": {"auth": "%%%" + PASSWORD}}}), "not base64"),
        (json.dumps({"auths": {"h.example": {"auth": b64(PASSWORD)}}}), "not base64"),
    ],
)
def test_malformed_file_names_it(env: dict[str, str], content: str, problem: str) -> None:
    path = docker_config(env)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(InvalidInputError) as info:
        cr.lookup("h.example", env=env)
    assert str(path) in str(info.value) and problem in str(info.value)
    assert PASSWORD not in str(info.value)


def test_empty_file_is_an_empty_config(env: dict[str, str]) -> None:
    docker_config(env).parent.mkdir(parents=True)
    docker_config(env).write_text("  \n")
    assert cr.lookup("h.example", env=env) is None


# -- store / erase in config.json -----------------------------------------------------------------


def test_store_creates_file_0600_in_dir_0700(env: dict[str, str]) -> None:
    cr.store("h.example", Credentials("bob", PASSWORD), env=env)
    path = docker_config(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert json.loads(path.read_text()) == {
        "auths": {"h.example": {"auth": b64(f"bob:{PASSWORD}")}}
    }
    assert cr.lookup("h.example", env=env) == Credentials("bob", PASSWORD)
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temp file left


def test_store_preserves_other_keys_and_fixes_mode(env: dict[str, str]) -> None:
    path = docker_config(env)
    original = {
        "auths": {"keep.example": {"auth": b64("k:1")}, "h.example": {"email": "e@x", "auth": "x"}},
        "psFormat": "table {{.ID}}",
        "proxies": {"default": {"httpProxy": "http://p:3128"}},
    }
    write_json(path, original)
    path.chmod(0o644)
    cr.store("h.example", Credentials("new", PASSWORD, TOKEN), env=env)
    doc = json.loads(path.read_text())
    assert doc["psFormat"] == original["psFormat"] and doc["proxies"] == original["proxies"]
    assert doc["auths"]["keep.example"] == {"auth": b64("k:1")}
    assert doc["auths"]["h.example"] == {
        "email": "e@x",
        "auth": b64(f"new:{PASSWORD}"),
        "identitytoken": TOKEN,
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_store_docker_hub_uses_docker_key(env: dict[str, str]) -> None:
    cr.store("docker.io", Credentials("hub", PASSWORD), env=env)
    doc = json.loads(docker_config(env).read_text())
    assert list(doc["auths"]) == ["https://index.docker.io/v1/"]
    assert cr.lookup("registry-1.docker.io", env=env) == Credentials("hub", PASSWORD)


def test_store_through_symlink_keeps_symlink(env: dict[str, str], tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    write_json(real, {"auths": {}})
    docker_config(env).parent.mkdir(parents=True)
    docker_config(env).symlink_to(real)
    cr.store("h.example", Credentials("bob", PASSWORD), env=env)
    assert docker_config(env).is_symlink()
    assert "h.example" in json.loads(real.read_text())["auths"]


def test_erase_removes_every_host_key(env: dict[str, str]) -> None:
    write_json(
        docker_config(env),
        {
            "auths": {
                "h.example": {"auth": b64("a:1")},
                "https://h.example/v1/": {"auth": b64("b:2")},
                "h.example/ns": {"auth": b64("c:3")},
                "other.example": {"auth": b64("d:4")},
            },
            "currentContext": "x",
        },
    )
    assert cr.erase("h.example", env=env) is True
    doc = json.loads(docker_config(env).read_text())
    assert doc == {
        "auths": {"h.example/ns": {"auth": b64("c:3")}, "other.example": {"auth": b64("d:4")}},
        "currentContext": "x",
    }
    assert cr.erase("h.example", env=env) is False
    assert cr.lookup("h.example", env=env) is None


def test_erase_without_file(env: dict[str, str]) -> None:
    assert cr.erase("h.example", env=env) is False
    assert not docker_config(env).exists()


def test_store_failure_names_file(env: dict[str, str], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    env["DOCKER_CONFIG"] = str(blocker / "sub")
    with pytest.raises(LorryError) as info:
        cr.store("h.example", Credentials("bob", PASSWORD), env=env)
    assert str(blocker / "sub" / "config.json") in str(info.value)
    assert PASSWORD not in str(info.value)


# -- credential helpers ---------------------------------------------------------------------------


def test_creds_store_round_trip(env: dict[str, str]) -> None:
    write_json(docker_config(env), {"credsStore": "lorrytest", "auths": {}})
    cr.store("h.example", Credentials("bob", PASSWORD), env=env)
    assert helper_db(env) == {"h.example": {"Username": "bob", "Secret": PASSWORD}}
    assert PASSWORD not in docker_config(env).read_text()
    assert cr.lookup("h.example", env=env) == Credentials("bob", PASSWORD)
    assert cr.erase("h.example", env=env) is True
    assert helper_db(env) == {}
    assert cr.lookup("h.example", env=env) is None
    assert cr.erase("h.example", env=env) is False


def test_creds_store_identity_token_and_hub_server_url(env: dict[str, str]) -> None:
    write_json(docker_config(env), {"credsStore": "lorrytest"})
    cr.store("docker.io", Credentials("bob", "", TOKEN), env=env)
    assert helper_db(env) == {
        "https://index.docker.io/v1/": {"Username": "<token>", "Secret": TOKEN}
    }
    assert cr.lookup("index.docker.io", env=env) == Credentials(identity_token=TOKEN)


def test_helper_store_strips_plaintext_secret_from_file(env: dict[str, str]) -> None:
    write_json(
        docker_config(env),
        {"credsStore": "lorrytest", "auths": {"h.example": {"auth": b64("old:pw")}}},
    )
    cr.store("h.example", Credentials("bob", PASSWORD), env=env)
    assert json.loads(docker_config(env).read_text())["auths"] == {"h.example": {}}


def test_cred_helpers_entry_beats_creds_store_and_auths(env: dict[str, str]) -> None:
    write_json(
        docker_config(env),
        {
            "credsStore": "nosuchhelper",
            "credHelpers": {"h.example": "lorrytest"},
            "auths": {"h.example": {"auth": b64("file:1")}},
        },
    )
    cr.store("h.example", Credentials("bob", PASSWORD), env=env)
    assert helper_db(env) == {"h.example": {"Username": "bob", "Secret": PASSWORD}}
    assert cr.lookup("h.example", env=env) == Credentials("bob", PASSWORD)
    # Other hosts go to credsStore, whose program is missing.
    with pytest.raises(AuthError, match="docker-credential-nosuchhelper"):
        cr.lookup("other.example", env=env)


def test_helper_not_found_falls_back_to_auths(env: dict[str, str]) -> None:
    write_json(
        docker_config(env),
        {"credsStore": "lorrytest", "auths": {"h.example": {"auth": b64("file:1")}}},
    )
    assert cr.lookup("h.example", env=env) == Credentials("file", "1")


def test_helper_in_auth_json(env: dict[str, str], tmp_path: Path) -> None:
    env["REGISTRY_AUTH_FILE"] = str(tmp_path / "auth.json")
    write_json(tmp_path / "auth.json", {"credHelpers": {"docker.io": "lorrytest"}})
    write_json(
        Path(env["LORRYTEST_CRED_DIR"], "store.json"),
        {"https://index.docker.io/v1/": {"Username": "hub", "Secret": PASSWORD}},
    )
    assert cr.lookup("docker.io", env=env) == Credentials("hub", PASSWORD)


def test_missing_helper_is_auth_error_naming_it(env: dict[str, str]) -> None:
    write_json(docker_config(env), {"credsStore": "nosuchhelper"})
    for call in (
        lambda: cr.lookup("h.example", env=env),
        lambda: cr.store("h.example", Credentials("bob", PASSWORD), env=env),
        lambda: cr.erase("h.example", env=env),
    ):
        with pytest.raises(AuthError, match="docker-credential-nosuchhelper"):
            call()


def test_failing_helper_error_hides_secret(env: dict[str, str]) -> None:
    write_json(docker_config(env), {"credsStore": "lorrytest"})
    env["LORRYTEST_CRED_FAIL"] = "1"
    with pytest.raises(AuthError) as info:
        cr.store("h.example", Credentials("bob", PASSWORD), env=env)
    message = str(info.value)
    assert "docker-credential-lorrytest" in message and "exit status 1" in message
    assert "lorrytest helper failed on store" in message  # the helper's own words are kept
    assert PASSWORD not in message
    with pytest.raises(AuthError, match="docker-credential-lorrytest get"):
        cr.lookup("h.example", env=env)


def test_no_secret_in_debug_logs(env: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    creds = Credentials("bob", PASSWORD, TOKEN)
    cr.store("h.example", creds, env=env)
    assert cr.lookup("h.example", env=env) == creds
    write_json(docker_config(env), {"credsStore": "lorrytest"})
    cr.store("h.example", creds, env=env)
    assert cr.lookup("h.example", env=env) == Credentials(identity_token=TOKEN)
    assert cr.erase("h.example", env=env)
    env["LORRYTEST_CRED_FAIL"] = "1"
    with pytest.raises(AuthError):
        cr.store("h.example", creds, env=env)
    assert caplog.records, "expected debug records"
    for secret in creds.secrets():
        assert secret not in caplog.text
