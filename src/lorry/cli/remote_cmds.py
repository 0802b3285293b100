"""Remote look-ups: ``config``, ``delete``, ``catalog``, and ``inspect`` of transport references.

``lorry inspect`` of a reference with a transport prefix (``docker://``, ``oci:``, …) comes
here from the store's ``inspect`` command and prints what ``skopeo inspect`` prints, JSON
indented by four spaces as skopeo does. ``--raw`` writes the top document's bytes unchanged
(with ``--platform``, the chosen image's manifest); ``--config`` the config re-indented as
it is, keys in the document's order (skopeo converts it to an OCI config first, which drops
Docker-only keys), ``--config --raw`` its exact bytes. ``lorry config`` writes the exact bytes
too, so they hash to the image ID. ``--format json`` prints one JSON object per line, as
``docker … --format json`` does, so the output streams into ``jq`` and line tools.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from lorry.cli.app import CliContext, cli, pass_context, printable, tls_options
from lorry.errors import InvalidInputError
from lorry.platform import Platform
from lorry.store import Store
from lorry.transports import parse_transport

__all__ = [
    "catalog_cmd",
    "config_cmd",
    "delete_cmd",
    "inspect_remote",
    "is_transport_ref",
    "parse_platform",
    "route_inspect",
    "warn",
    "write_bytes",
]


def is_transport_ref(text: str) -> bool:
    """Whether ``text`` names its transport (``docker://``, ``oci:``, ``lorry:``, …)."""
    tref = parse_transport(text)
    return tref.transport != "lorry" or text.startswith("lorry:")


def parse_platform(text: str | None) -> Platform | None:
    """The ``--platform`` option, parsed before anything is fetched (a bad one is exit 2)."""
    return Platform.parse(text) if text else None


def warn(line: str | None) -> None:
    """Print a warning line (docker's platform mismatch) on stderr."""
    if line:
        click.echo(printable(line), err=True)


def write_bytes(raw: bytes) -> None:
    """Write a document's bytes to stdout exactly as they are."""
    sys.stdout.flush()
    sys.stdout.buffer.write(raw)
    sys.stdout.buffer.flush()


def _json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=4, ensure_ascii=False))


@contextmanager
def _store_for(ctx: CliContext, text: str) -> Iterator[Store | None]:
    """The local store when ``text`` names it (``lorry:``), else None: nothing is opened."""
    if parse_transport(text).transport != "lorry":
        yield None
        return
    with Store.open(ctx.root) as store:
        yield store


def _as_transport(text: str) -> str:
    """A bare reference names a registry image here (as ``manifest`` and ``digest`` take)."""
    return text if is_transport_ref(text) else f"docker://{text}"


def inspect_remote(
    ctx: CliContext,
    reference: str,
    *,
    raw: bool,
    config: bool,
    platform: str | None,
    fmt: str | None = None,
) -> None:
    """``lorry inspect`` of one transport reference, as ``skopeo inspect`` (flags alike).

    ``fmt`` is a Go template for the document (or the config with ``config``), as skopeo's
    ``--format``.
    """
    from lorry.ops import inspect_remote as ops  # here, not at import: start-up time
    from lorry.ops.settings_bridge import session_options

    want = parse_platform(platform)
    options = session_options(ctx.settings)
    with _store_for(ctx, reference) as store:
        if raw and not config and want is None:
            top, _, _ = ops.top_document_sync(reference, session_options=options, store=store)
            write_bytes(top)
            return
        found = ops.look_up_sync(
            reference,
            want,
            tags=not raw and not config,
            session_options=options,
            store=store,
        )
    warn(found.warning)
    if raw and config:
        write_bytes(ops.config_bytes(found))
    elif raw:
        write_bytes(found.manifest.raw)
    elif fmt is not None:
        from lorry.cli.gotemplate import render_each

        doc = json.loads(ops.config_bytes(found)) if config else ops.inspect_document(found)
        click.echo(render_each(fmt, [doc])[0])
    elif config:
        _json(json.loads(ops.config_bytes(found)))
    else:
        _json(ops.inspect_document(found))


@cli.command("config")
@click.argument("reference")
@click.option("--platform", help="The image of a multi-platform index (default: this host's).")
@tls_options
@pass_context
def config_cmd(ctx: CliContext, reference: str, platform: str | None) -> None:
    """Print an image's config JSON, exactly as stored (a bare REF is a registry image).

    \b
    Examples:
      lorry config localhost:5000/app:1
      lorry config --platform linux/arm64 oci:./layout:1
    """
    from lorry.ops.inspect_remote import config_bytes, look_up_sync  # start-up time
    from lorry.ops.settings_bridge import session_options

    want = parse_platform(platform)
    text = _as_transport(reference)
    with _store_for(ctx, text) as store:
        found = look_up_sync(text, want, session_options=session_options(ctx.settings), store=store)
    warn(found.warning)
    write_bytes(config_bytes(found))


@cli.command("delete")
@click.argument("reference")
@tls_options
@pass_context
def delete_cmd(ctx: CliContext, reference: str) -> None:
    """Delete a manifest from its registry (a tag is resolved to its digest first).

    \b
    Examples:
      lorry delete localhost:5000/app:old
      lorry delete docker://localhost:5000/app@sha256:…
    """
    from lorry.ops.inspect_remote import delete_sync  # here, not at import: start-up time
    from lorry.ops.settings_bridge import session_options

    deleted = delete_sync(reference, session_options=session_options(ctx.settings))
    click.echo(f"Deleted: {deleted}")


@cli.command("catalog")
@click.argument("registry")
@click.option("--page-size", type=click.IntRange(1, 1000), help="Names asked for per request.")
@click.option(
    "--format",
    "fmt",
    metavar="FORMAT",
    help="'json' (one object per line) or a Go template over Repository.",
)
@tls_options
@pass_context
def catalog_cmd(ctx: CliContext, registry: str, page_size: int | None, fmt: str | None) -> None:
    """List the repositories of a registry, one per line.

    \b
    Examples:
      lorry catalog localhost:5000
      lorry catalog --format json localhost:5000
    """
    from lorry.ops.inspect_remote import catalog_sync  # here, not at import: start-up time
    from lorry.ops.settings_bridge import session_options

    names = catalog_sync(registry, page_size, session_options=session_options(ctx.settings))
    if fmt is None:
        for ref in names:
            click.echo(ref.repository)
        return
    from lorry.cli.gotemplate import render_each

    for line in render_each(fmt, [{"Repository": r.familiar_name} for r in names], ["Repository"]):
        click.echo(line)


def route_inspect(
    ctx: CliContext,
    images: tuple[str, ...],
    *,
    raw: bool,
    config: bool,
    platform: str | None,
    fmt: str | None = None,
) -> bool:
    """Inspect a transport reference here and return True; False leaves bare names to the store.

    A transport reference is inspected alone (as skopeo takes one); skopeo's flags on local
    images are refused, naming the flag.
    """
    remote = [text for text in images if is_transport_ref(text)]
    if remote:
        if len(images) > 1:
            raise InvalidInputError(
                f"inspect: {remote[0]}: a transport reference is inspected on its own"
            )
        inspect_remote(ctx, remote[0], raw=raw, config=config, platform=platform, fmt=fmt)
        return True
    given = [f for f, on in (("--raw", raw), ("--config", config), ("--platform", platform)) if on]
    if given:
        raise InvalidInputError(
            f"inspect: {', '.join(given)} needs a transport reference "
            "(docker://REF, oci:DIR[:REF], …); local images are inspected as docker does"
        )
    return False
