"""Registry commands: ``login``, ``logout``, ``ls``, ``manifest`` and ``digest``.

``login`` checks the credentials against the registry before saving them (as docker does) and
writes them where ``docker login`` would: the configured credential helper, else
``config.json`` with mode 0600. ``manifest`` writes the raw bytes to stdout unchanged, so its
output is byte-for-byte what ``skopeo inspect --raw`` prints; with ``--platform`` it (and
``digest``) gives the chosen image's manifest instead of the index. ``ls --format json``
prints one JSON object per line, as docker's ``--format json`` does.
"""

from __future__ import annotations

import sys

import click

from lorry.cli.app import CliContext, cli, pass_context, tls_options
from lorry.errors import InvalidInputError
from lorry.reference import parse, parse_docker_ref

__all__ = ["digest_cmd", "login_cmd", "logout_cmd", "ls_cmd", "manifest_cmd"]


def _server(server: str | None) -> str:
    """The registry host a login command names (Docker Hub when none, URLs accepted)."""
    from lorry.registry import credentials  # here, not at import: start-up time
    from lorry.registry.config import DOCKER_HUB

    if not server:
        return DOCKER_HUB
    host = credentials.normalize_host(server)
    return DOCKER_HUB if host == credentials.DOCKER_HUB_HOST else host


@cli.command("login")
@click.argument("server", required=False)
@click.option("-u", "--username", help="User name.")
@click.option("-p", "--password", help="Password or token (prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@tls_options
@pass_context
def login_cmd(
    ctx: CliContext,
    server: str | None,
    username: str | None,
    password: str | None,
    password_stdin: bool,
) -> None:
    """Check credentials against a registry and save them as docker does.

    \b
    Examples:
      lorry login r.example
      echo "$TOKEN" | lorry login -u ci --password-stdin r.example
    """
    from lorry.ops.settings_bridge import registry_config
    from lorry.registry import credentials  # here, not at import: start-up time
    from lorry.registry.client import RegistrySession

    registry = _server(server)
    if password_stdin:
        if password:
            raise InvalidInputError("login: --password and --password-stdin are mutually exclusive")
        if not username:
            raise InvalidInputError("login: --password-stdin needs --username")
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InvalidInputError("login: no password on stdin")
    elif password:
        click.echo(
            "WARNING! Using --password via the CLI is insecure (it shows in the process list "
            "and shell history). Use --password-stdin.",
            err=True,
        )
    if (not username or not password) and not sys.stdin.isatty():
        missing = (
            "username and password"
            if not username and not password
            else ("username" if not username else "password")
        )
        raise InvalidInputError(
            f"login: no terminal to ask for the {missing} on; give --username and --password-stdin"
        )
    if not username:
        username = click.prompt("Username")
    if not password:
        password = click.prompt("Password", hide_input=True)
    creds = credentials.Credentials(username=username or "", password=password or "")
    config = registry_config(ctx.settings)
    with RegistrySession(config, credentials=lambda _host: creds) as session:
        session.check_login(registry)
    credentials.store(registry, creds)
    click.echo("Login Succeeded")


@cli.command("logout")
@click.argument("server", required=False)
@pass_context
def logout_cmd(ctx: CliContext, server: str | None) -> None:
    """Forget the saved credentials of a registry.

    \b
    Example:
      lorry logout r.example
    """
    from lorry.registry import credentials  # here, not at import: start-up time

    del ctx
    registry = _server(server)
    if credentials.erase(registry):
        click.echo(f"Removing login credentials for {registry}")
    else:
        click.echo(f"Not logged in to {registry}")


@cli.command("ls")
@click.argument("repository")
@click.option("--page-size", type=click.IntRange(1, 1000), help="Tags asked for per request.")
@click.option(
    "--format",
    "fmt",
    metavar="FORMAT",
    help="'json' (one object per line) or a Go template over Repository and Tag.",
)
@tls_options
@pass_context
def ls_cmd(ctx: CliContext, repository: str, page_size: int | None, fmt: str | None) -> None:
    """List the tags of a repository, one per line.

    \b
    Examples:
      lorry ls localhost:5000/app
      lorry ls --format '{{.Repository}}:{{.Tag}}' r.example/team/app
    """
    from lorry.ops.settings_bridge import registry_config
    from lorry.registry.client import RegistrySession  # here, not at import: start-up time

    ref = parse(repository)
    if not ref.is_name_only:
        raise InvalidInputError(f"{repository}: give a repository without tag or digest")
    with RegistrySession(registry_config(ctx.settings)) as session:
        names = session.client_for(ref).list_tags(page_size)
    if fmt is None:
        for name in names:
            click.echo(name)
        return
    from lorry.cli.gotemplate import render_each

    rows = [{"Repository": ref.familiar_name, "Tag": name} for name in names]
    for line in render_each(fmt, rows, ["Repository", "Tag"]):
        click.echo(line)


def _chosen(ctx: CliContext, reference: str, platform: str) -> tuple[bytes, str]:
    """The manifest bytes and digest of the image ``--platform`` picks (warned on mismatch)."""
    from lorry.cli.remote_cmds import parse_platform, warn
    from lorry.ops.inspect_remote import look_up_sync  # here, not at import: start-up time
    from lorry.ops.settings_bridge import session_options

    want = parse_platform(platform)
    found = look_up_sync(
        f"docker://{reference}", want, session_options=session_options(ctx.settings)
    )
    warn(found.warning)
    return found.manifest.raw, str(found.manifest_digest)


_PLATFORM = click.option(
    "--platform", help="The manifest of this platform's image instead of the index."
)


@cli.command("manifest")
@click.argument("reference")
@_PLATFORM
@tls_options
@pass_context
def manifest_cmd(ctx: CliContext, reference: str, platform: str | None) -> None:
    """Print a manifest's raw bytes, exactly as the registry stores them.

    \b
    Examples:
      lorry manifest alpine:3.20
      lorry manifest --platform linux/arm64 localhost:5000/app:1
    """
    from lorry.cli.remote_cmds import write_bytes
    from lorry.ops.settings_bridge import registry_config
    from lorry.registry.client import RegistrySession  # here, not at import: start-up time

    if platform is not None:
        write_bytes(_chosen(ctx, reference, platform)[0])
        return
    ref = parse_docker_ref(reference)
    with RegistrySession(registry_config(ctx.settings)) as session:
        raw, _, _ = session.client_for(ref).get_manifest(ref.digest or ref.tag or "latest")
    write_bytes(raw)


@cli.command("digest")
@click.argument("reference")
@_PLATFORM
@tls_options
@pass_context
def digest_cmd(ctx: CliContext, reference: str, platform: str | None) -> None:
    """Print a manifest's digest, computed from its bytes.

    \b
    Examples:
      lorry digest alpine:3.20
      lorry digest --platform linux/arm64 localhost:5000/app:1
    """
    from lorry.ops.settings_bridge import registry_config
    from lorry.registry.client import RegistrySession  # here, not at import: start-up time

    if platform is not None:
        click.echo(_chosen(ctx, reference, platform)[1])
        return
    ref = parse_docker_ref(reference)
    with RegistrySession(registry_config(ctx.settings)) as session:
        _, _, digest = session.client_for(ref).get_manifest(ref.digest or ref.tag or "latest")
    click.echo(str(digest))
