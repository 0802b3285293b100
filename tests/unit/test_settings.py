"""lorry.settings: the file, the LORRY_* variables, flag overrides, validation, and the bridge."""

from __future__ import annotations

from pathlib import Path

import pytest

from lorry.cli.app import CliContext, cli, pass_context, run
from lorry.errors import InvalidInputError
from lorry.ops import settings_bridge as bridge
from lorry.settings import RegistrySettings, Settings, default_config_path, load
from lorry.transfer.limits import default_cpu_limit

FULL = """
root = "store"
max_concurrent_downloads = 7
max_concurrent_uploads = 0
cpu = 2
max_attempts = 1
stall_timeout = 12.5

[registries."Reg.Example:5000"]
insecure = true
mirrors = ["http://127.0.0.1:5001/", "https://mirror.example/v"]
ca_file = "certs/ca.pem"

[registries."docker.io"]
mirrors = ["https://hub-mirror.example"]
"""


@pytest.fixture(autouse=True)
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The default config location points into the test's directory, never the user's."""
    home = tmp_path / "xdg-config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_when_the_default_file_is_missing(config_home: Path) -> None:
    assert default_config_path() == config_home / "lorry" / "lorry.toml"
    settings = load(env={})
    assert settings == Settings()
    assert (settings.max_concurrent_downloads, settings.max_concurrent_uploads) == (3, 5)
    assert (settings.max_attempts, settings.stall_timeout, settings.cpu) == (5, 30.0, None)
    assert settings.root is None and settings.source is None and dict(settings.registries) == {}


def test_the_default_file_is_read(config_home: Path) -> None:
    file = write(config_home / "lorry" / "lorry.toml", "max_attempts = 2\n")
    settings = load(env={})
    assert settings.max_attempts == 2 and settings.source == file


def test_every_key_of_a_full_file(tmp_path: Path) -> None:
    file = write(tmp_path / "conf" / "lorry.toml", FULL)
    s = load(file, env={})
    assert s.root == tmp_path / "conf" / "store"  # relative to the file's directory
    assert (s.max_concurrent_downloads, s.max_concurrent_uploads, s.cpu) == (7, 0, 2)
    assert (s.max_attempts, s.stall_timeout) == (1, 12.5)
    assert s.registry("reg.example:5000") == RegistrySettings(
        mirrors=("http://127.0.0.1:5001", "https://mirror.example/v"),
        insecure=True,
        ca_file=tmp_path / "conf" / "certs" / "ca.pem",
    )
    assert s.registry("REG.example:5000").insecure  # hosts compare case-insensitively
    assert s.registry("docker.io").mirrors == ("https://hub-mirror.example",)
    assert s.registry("other.example") == RegistrySettings()


def test_home_is_expanded_and_absolute_paths_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    file = write(tmp_path / "a.toml", 'root = "~/s"\n[registries.r]\nca_file = "/etc/ca.pem"\n')
    s = load(file, env={})
    assert s.root == tmp_path / "home" / "s"
    assert s.registry("r").ca_file == Path("/etc/ca.pem")


def test_lorry_config_names_the_file_and_an_argument_beats_it(tmp_path: Path) -> None:
    by_env = write(tmp_path / "env.toml", "max_attempts = 3\n")
    by_arg = write(tmp_path / "arg.toml", "max_attempts = 4\n")
    assert load(env={"LORRY_CONFIG": str(by_env)}).max_attempts == 3
    assert load(by_arg, env={"LORRY_CONFIG": str(by_env)}).max_attempts == 4


@pytest.mark.parametrize("how", ["argument", "env"])
def test_a_named_file_must_exist(tmp_path: Path, how: str) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(InvalidInputError, match=r"nope\.toml: configuration file not found"):
        if how == "argument":
            load(missing, env={})
        else:
            load(env={"LORRY_CONFIG": str(missing)})


def test_precedence_flags_over_env_over_file(tmp_path: Path) -> None:
    file = write(tmp_path / "l.toml", FULL)
    env = {
        "LORRY_ROOT": "/env/root",
        "LORRY_MAX_CONCURRENT_DOWNLOADS": "1",
        "LORRY_MAX_CONCURRENT_UPLOADS": "2",
        "LORRY_MAX_ATTEMPTS": "9",
        "LORRY_STALL_TIMEOUT": "0",
        "LORRY_INSECURE_REGISTRIES": "a.example:1, docker.io,",
    }
    s = load(file, env=env)
    assert s.root == Path("/env/root")
    assert (s.max_concurrent_downloads, s.max_concurrent_uploads) == (1, 2)
    assert (s.max_attempts, s.stall_timeout, s.cpu) == (9, 0.0, 2)
    assert s.registry("a.example:1").insecure
    # Marking a configured registry insecure keeps its mirrors.
    assert s.registry("docker.io") == RegistrySettings(("https://hub-mirror.example",), True)
    flagged = s.with_overrides(
        root=Path("/flag"), max_concurrent_downloads=4, max_attempts=None, insecure_registries=["B"]
    )
    assert flagged.root == Path("/flag") and flagged.max_concurrent_downloads == 4
    assert flagged.max_attempts == 9  # None: the flag was not given
    assert flagged.registry("b").insecure and flagged.registry("a.example:1").insecure
    assert s.max_concurrent_downloads == 1  # frozen: the original is unchanged


def test_empty_variables_are_ignored(tmp_path: Path) -> None:
    s = load(write(tmp_path / "l.toml", "max_attempts = 2\n"), env={"LORRY_MAX_ATTEMPTS": " "})
    assert s.max_attempts == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_attempt = 3", "max_attempt: unknown key (known: cert_dir, cpu, max_attempts,"),
        ("max_attempts = 0", "max_attempts: must be an integer >= 1, got 0"),
        ("max_attempts = true", "max_attempts: must be an integer >= 1, got True"),
        ("cpu = 0", "cpu: must be an integer >= 1, got 0"),
        ("max_concurrent_downloads = -1", "max_concurrent_downloads: must be an integer >= 0"),
        ('max_concurrent_uploads = "4"', "max_concurrent_uploads: must be an integer >= 0"),
        ("stall_timeout = -0.5", "stall_timeout: must be a number of seconds >= 0"),
        ("root = 3", "root: must be a non-empty path string, got 3"),
        ("registries = 1", "registries: must be a table of registry hosts"),
        ('[registries."http://r"]', "registries: 'http://r' must be a registry host[:port]"),
        ("[registries]\nr = 1", 'registries."r": must be a table with mirrors, insecure, ca_file'),
        ("[registries.r]\nsecure = 1", 'registries."r".secure: unknown key'),
        ('[registries.r]\ninsecure = "yes"', 'registries."r".insecure: must be true or false'),
        ('[registries.r]\nmirrors = "http://m"', 'registries."r".mirrors: must be a list of'),
        ('[registries.r]\nmirrors = ["m:5000"]', "'m:5000' is not an http:// or https:// URL"),
        ("[registries.r]\nmirrors = [1]", "1 is not an http:// or https:// URL"),
        ("[registries.r]\nca_file = false", 'registries."r".ca_file: must be a non-empty path'),
        ("max_attempts = ", "invalid TOML: "),
        ('proxy = "socks5://p:1080"', "proxy: must be an http://host:port URL, got 'socks5://"),
        (
            'proxy = "http://u:secret@p:x"',
            "proxy: must be an http://host:port URL, got 'http://u:***@",
        ),
        ("proxy = 3128", "proxy: must be a string, got 3128"),
        ('tls_verify = "no"', "tls_verify: must be true or false"),
    ],
)
def test_file_errors_name_the_file_the_key_and_the_rule(
    tmp_path: Path, text: str, expected: str
) -> None:
    file = write(tmp_path / "bad.toml", text + "\n")
    with pytest.raises(InvalidInputError) as info:
        load(file, env={})
    message = str(info.value)
    assert message.startswith(f"{file}: ")
    assert expected in message
    assert "\n" not in message


def test_a_file_that_is_not_utf8_is_one_error_line(tmp_path: Path) -> None:
    file = tmp_path / "latin1.toml"
    file.write_bytes(b'proxy = "http://caf\xe9:3128"\n')
    with pytest.raises(InvalidInputError, match=r"latin1\.toml: invalid TOML: not UTF-8"):
        load(file, env={})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LORRY_MAX_ATTEMPTS": "x"}, "LORRY_MAX_ATTEMPTS: must be an integer, got 'x'"),
        ({"LORRY_MAX_ATTEMPTS": "0"}, "LORRY_MAX_ATTEMPTS: must be an integer >= 1, got 0"),
        ({"LORRY_MAX_CONCURRENT_DOWNLOADS": "-2"}, "LORRY_MAX_CONCURRENT_DOWNLOADS: must be an"),
        ({"LORRY_STALL_TIMEOUT": "soon"}, "LORRY_STALL_TIMEOUT: must be a number, got 'soon'"),
        ({"LORRY_INSECURE_REGISTRIES": "https://r"}, "LORRY_INSECURE_REGISTRIES: 'https://r'"),
    ],
)
def test_variable_errors_name_the_variable(env: dict[str, str], expected: str) -> None:
    with pytest.raises(InvalidInputError, match="^" + expected.replace("(", r"\(")):
        load(env=env)


def test_flag_errors_name_the_flag() -> None:
    with pytest.raises(InvalidInputError, match=r"^--max-attempts: must be an integer >= 1"):
        Settings().with_overrides(max_attempts=0)
    with pytest.raises(InvalidInputError, match=r"^--insecure-registry: 'a/b' must be a"):
        Settings().with_overrides(insecure_registries=["a/b"])
    with pytest.raises(InvalidInputError, match="no_such: unknown setting"):
        Settings().with_overrides(no_such=1)


def test_proxy_and_tls_settings_reach_the_registry_config(tmp_path: Path) -> None:
    text = 'proxy = "http://proxy.example:3128"\n[registries."127.0.0.1:5000"]\ninsecure = false\n'
    s = load(write(tmp_path / "l.toml", text), env={})
    assert s.registry("127.0.0.1:5000").insecure is False and s.registry("x").insecure is None
    config = bridge.registry_config(s.with_overrides(cert_dir=str(tmp_path)))
    assert config.proxy == "http://proxy.example:3128" and config.cert_dir == tmp_path
    assert config.tls_verify and not config.insecure("127.0.0.1:5000")
    assert config.insecure("127.0.0.1:5001")  # loopback: insecure unless configured otherwise
    assert not bridge.registry_config(s.with_overrides(tls_verify=False)).tls_verify


def test_bridge_numbers() -> None:
    s = Settings(max_concurrent_downloads=1, max_concurrent_uploads=0, max_attempts=2)
    assert (bridge.limits(s).downloads, bridge.limits(s).uploads) == (1, 0)
    assert bridge.limits(s).cpu == default_cpu_limit()
    assert bridge.limits(Settings(cpu=1)).cpu == 1
    assert bridge.retry_policy(s).attempts == 2
    assert bridge.stall_timeout(s) == 30.0
    assert bridge.stall_timeout(Settings(stall_timeout=0)) is None  # 0 turns the guard off


def test_insecure_and_mirrors_decide_the_endpoints(tmp_path: Path) -> None:
    s = load(write(tmp_path / "l.toml", FULL), env={}).with_overrides(
        insecure_registries=["flagged.example"]
    )
    config = bridge.session_options(s).config
    assert config is not None
    # insecure: HTTPS without verification first, plain HTTP when TLS fails (docker's rule)
    assert config.endpoint("reg.example:5000").http_fallback
    assert config.endpoint("flagged.example").http_fallback
    assert not config.endpoint("plain.example").http_fallback
    assert config.allows_plain_http("flagged.example")
    assert not config.allows_plain_http("plain.example")
    assert config.host("reg.example:5000").ca_file == str(tmp_path / "certs" / "ca.pem")
    urls = [e.base_url for e in config.pull_endpoints("reg.example:5000")]
    assert urls == ["http://127.0.0.1:5001", "https://mirror.example/v", "https://reg.example:5000"]
    hub = [e.base_url for e in config.pull_endpoints("index.docker.io")]
    assert hub == ["https://hub-mirror.example", "https://registry-1.docker.io"]


def test_the_cli_loads_settings_once_with_its_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[CliContext] = []

    @cli.command("settings-for-test", hidden=True)
    @pass_context
    def probe(ctx: CliContext) -> None:
        seen.append(ctx)

    file = write(tmp_path / "l.toml", 'root = "/from/file"\nmax_attempts = 2\n')
    monkeypatch.setenv("LORRY_MAX_ATTEMPTS", "3")
    monkeypatch.delenv("LORRY_ROOT", raising=False)
    args = ["--config", str(file), "--insecure-registry", "x.example:5000"]
    try:
        assert run([*args, "settings-for-test"]) == 0
        assert run(["--root", str(tmp_path / "r"), *args, "settings-for-test"]) == 0
        write(file, "max_attempts = 0\n")
        assert run([*args, "settings-for-test"]) == 2
    finally:
        cli.commands.pop("settings-for-test")
    first, second = seen
    assert first.root == first.settings.root == Path("/from/file")
    assert first.settings.max_attempts == 3 and first.settings.source == file
    assert first.settings.registry("x.example:5000").insecure
    assert second.root == second.settings.root == tmp_path / "r"
    err = capsys.readouterr().err
    assert err == f"lorry: error: {file}: max_attempts: must be an integer >= 1, got 0\n"
