"""login / logout through a credential helper, and no secret in any debug log."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from regclient_helpers import run_lorry

from lorry.testing.skopeo import push_layout

pytestmark = pytest.mark.integration

PASSWORD = "pw-Sup3rSecret-987"

HELPER = """#!{python}
# docker-credential-lorrytest: the credential-helper protocol over a JSON file.
import json, os, sys
path = os.environ["LORRYTEST_HELPER_STORE"]
store = json.load(open(path)) if os.path.exists(path) else {{}}
action = sys.argv[1]
data = sys.stdin.read()
if action == "get":
    server = data.strip()
    if server not in store:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({{"ServerURL": server, **store[server]}}))
elif action == "store":
    doc = json.loads(data)
    store[doc["ServerURL"]] = {{"Username": doc["Username"], "Secret": doc["Secret"]}}
    json.dump(store, open(path, "w"))
elif action == "erase":
    store.pop(data.strip(), None)
    json.dump(store, open(path, "w"))
"""


@pytest.fixture
def helper_env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-lorrytest"
    helper.write_text(HELPER.format(python=sys.executable))
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    docker_config = tmp_path / "docker"
    docker_config.mkdir()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DOCKER_CONFIG": str(docker_config),
        "REGISTRY_AUTH_FILE": str(tmp_path / "auth.json"),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "HOME": str(tmp_path / "home"),
        "LORRYTEST_HELPER_STORE": str(tmp_path / "helper-store.json"),
    }


def test_login_logout_via_helper_and_no_secret_in_debug_logs(
    registry_factory, token_issuer_factory, image_builder, helper_env: dict[str, str]
) -> None:
    issuer = token_issuer_factory(users={"alice": PASSWORD}, grants={"alice": {"app/*": ["*"]}})
    server = registry_factory(auth="token", token_issuer=issuer)
    config_path = Path(helper_env["DOCKER_CONFIG"], "config.json")
    config_path.write_text(json.dumps({"credHelpers": {server.host: "lorrytest"}}))
    built = image_builder(layers=1)
    push_layout(built, server, "app/cli", "v1", dest_creds=("alice", PASSWORD))

    bad = run_lorry(
        "--debug",
        "login",
        server.host,
        "-u",
        "alice",
        "--password-stdin",
        env=helper_env,
        stdin=b"wrong-password\n",
    )
    assert (
        bad.returncode == 5
        and f"logging in to {server.host}: authenticating".encode() in bad.stderr
    )
    assert not Path(helper_env["LORRYTEST_HELPER_STORE"]).exists()

    login = run_lorry(
        "--debug",
        "login",
        server.host,
        "-u",
        "alice",
        "--password-stdin",
        env=helper_env,
        stdin=PASSWORD.encode() + b"\n",
    )
    assert login.returncode == 0, login.stderr
    assert b"Login Succeeded" in login.stdout
    stored = json.loads(Path(helper_env["LORRYTEST_HELPER_STORE"]).read_text())
    assert stored[server.host] == {"Username": "alice", "Secret": PASSWORD}

    shown = run_lorry("--debug", "manifest", f"{server.host}/app/cli:v1", env=helper_env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == built.manifest_bytes
    listed = run_lorry("--debug", "ls", f"{server.host}/app/cli", env=helper_env)
    assert listed.stdout.split() == [b"v1"]

    logout = run_lorry("--debug", "logout", server.host, env=helper_env)
    assert logout.returncode == 0 and b"Removing login credentials" in logout.stdout
    assert json.loads(Path(helper_env["LORRYTEST_HELPER_STORE"]).read_text()) == {}
    after = run_lorry("manifest", f"{server.host}/app/cli:v1", env=helper_env)
    assert after.returncode == 5 and b"fetching manifest v1 from" in after.stderr

    logs = b"".join(r.stderr for r in (bad, login, shown, listed, logout, after)).decode()
    assert "DEBUG" in logs and "token" in logs.lower()
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic, "wrong-password", "eyJ"):  # JWTs start with eyJ
        assert secret not in logs


def test_login_without_helper_writes_config_json_0600(
    registry_factory, helper_env: dict[str, str]
) -> None:
    server = registry_factory(auth="basic", users={"bob": PASSWORD})
    login = run_lorry("login", server.host, "-u", "bob", "-p", PASSWORD, env=helper_env)
    assert login.returncode == 0, login.stderr
    config_path = Path(helper_env["DOCKER_CONFIG"], "config.json")
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    auth = json.loads(config_path.read_text())["auths"][server.host]["auth"]
    assert base64.b64decode(auth).decode() == f"bob:{PASSWORD}"
    assert run_lorry("logout", server.host, env=helper_env).returncode == 0
    assert server.host not in json.loads(config_path.read_text()).get("auths", {})
