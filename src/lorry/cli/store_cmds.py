"""Commands over the local store: ``images``, ``inspect``, ``tag``, ``rmi``, ``prune``, ``fsck``.

Machine output goes to stdout: ``--format json`` prints one JSON document, ``-q`` prints only
image IDs (or digests); the default is a human table or Docker-like lines. See docs/store.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from lorry.cli.app import CliContext, cli, pass_context, tls_options
from lorry.cli.humanize import go_time, human_size, since
from lorry.errors import IntegrityError, InvalidInputError, StoreError
from lorry.reference import parse
from lorry.store import Store, StoreLayout, resolve_root
from lorry.store.fsck import FsckReport, check_database, fsck
from lorry.store.gc import prune
from lorry.store.inspect import (
    ImageSummary,
    familiar_name,
    filter_images,
    find_image,
    inspect_image,
    list_images,
)
from lorry.store.remove import RemoveResult, remove_image, remove_reference
from lorry.store.repair import RepairReport, repair

__all__ = ["fsck_cmd", "images_cmd", "inspect_cmd", "prune_cmd", "rmi_cmd", "tag_cmd"]

_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)


@contextmanager
def _open(ctx: CliContext) -> Iterator[Store]:
    with Store.open(ctx.root) as store:
        yield store


def _json(doc: Any) -> None:
    click.echo(json.dumps(doc, indent=2))


#: The fields of one ``lorry images`` row for ``--format``, as docker names them.
IMAGE_FIELDS = (
    "Containers",
    "CreatedAt",
    "CreatedSince",
    "Digest",
    "ID",
    "Repository",
    "SharedSize",
    "Size",
    "Tag",
    "UniqueSize",
    "VirtualSize",
)
#: Column titles of the ``table`` header row.
_IMAGE_HEADERS = {
    **{f: f.upper() for f in IMAGE_FIELDS},
    "CreatedAt": "CREATED AT",
    "CreatedSince": "CREATED",
    "ID": "IMAGE ID",
    "SharedSize": "SHARED SIZE",
    "UniqueSize": "UNIQUE SIZE",
    "VirtualSize": "VIRTUAL SIZE",
}


def _image_fields(row: ImageSummary, no_trunc: bool) -> dict[str, str]:
    """One row as docker's ``--format`` sees it: every value a string."""
    size = human_size(row.size)
    return {
        "Containers": "N/A",
        "CreatedAt": go_time(row.created),
        "CreatedSince": since(row.created),
        "Digest": str(row.digest) if row.digest else "<none>",
        "ID": str(row.image_id) if no_trunc else row.image_id.hex[:12],
        "Repository": row.repository or "<none>",
        "SharedSize": "N/A",
        "Size": size,
        "Tag": row.tag or "<none>",
        "UniqueSize": "N/A",
        "VirtualSize": size,
    }


@cli.command("images")
@click.argument("repository", required=False)
@click.option("-q", "--quiet", is_flag=True, help="Only show image IDs.")
@click.option("--digests", is_flag=True, help="Show digests.")
@click.option("--no-trunc", is_flag=True, help="Don't truncate output (full image IDs).")
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keep rows that match: dangling=true|false, reference=PATTERN, before=IMAGE, "
    "since=IMAGE, label=KEY[=VALUE]; repeatable.",
)
@click.option(
    "--format",
    "fmt",
    metavar="FORMAT",
    help="'table' (default), 'json' (one object per line), 'table TEMPLATE' or a Go TEMPLATE "
    "over the fields " + ", ".join(IMAGE_FIELDS) + ".",
)
@pass_context
def images_cmd(  # noqa: PLR0917 - click passes options positionally
    ctx: CliContext,
    repository: str | None,
    quiet: bool,
    digests: bool,
    no_trunc: bool,
    filters: tuple[str, ...],
    fmt: str | None,
) -> None:
    """List images in the local store, as docker images does.

    \b
    Examples:
      lorry images
      lorry images alpine --digests
      lorry images --filter dangling=true -q
      lorry images --format '{{.Repository}}:{{.Tag}} {{.Size}}'
    """
    from lorry.cli.gotemplate import align, parse_format

    if quiet:
        template = parse_format("{{.ID}}", IMAGE_FIELDS)
    elif fmt in (None, "table"):
        digest = "\t{{.Digest}}" if digests else ""
        columns = "{{.Repository}}\t{{.Tag}}" + digest + "\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
        template = parse_format("table " + columns, IMAGE_FIELDS)
    elif fmt == "json":
        template = parse_format("{{json .}}", IMAGE_FIELDS)
    else:
        template = parse_format(fmt, IMAGE_FIELDS)
    keep = list(filters)
    if repository is not None:
        keep.append("reference=" + _reference_pattern(repository))
    with _open(ctx) as store:
        rows = filter_images(store, list_images(store, show_digests=digests), keep)
    lines = [template.render(_image_fields(r, no_trunc)) for r in rows]
    if quiet:
        lines = list(dict.fromkeys(lines))
    if template.table:
        lines = align([template.render(_IMAGE_HEADERS), *lines])
    for line in lines:
        click.echo(line)


def _reference_pattern(text: str) -> str:
    """``images REPO[:TAG]``: the familiar name (and tag) to match, checked as a reference."""
    ref = parse(text)
    name = familiar_name(ref.name)
    if ref.digest:
        raise InvalidInputError(f"{text}: give REPOSITORY[:TAG], not a digest")
    return f"{name}:{ref.tag}" if ref.tag else name


@cli.command("inspect")
@click.argument("images", nargs=-1, required=True)
@click.option(
    "-f",
    "--format",
    "fmt",
    metavar="FORMAT",
    help="'json' (default: a JSON list) or a Go template applied to each document.",
)
@click.option("--raw", is_flag=True, help="Transport references: the manifest's bytes as stored.")
@click.option("--config", "config", is_flag=True, help="Transport references: the image config.")
@click.option("--platform", help="Transport references: the image of an index to inspect.")
@tls_options
@pass_context
def inspect_cmd(  # noqa: PLR0917 - click passes options positionally
    ctx: CliContext,
    images: tuple[str, ...],
    fmt: str | None,
    raw: bool,
    config: bool,
    platform: str | None,
) -> None:
    """Show local images as a JSON list (as docker inspect), or a transport reference as skopeo.

    \b
    Examples:
      lorry inspect alpine:3.20
      lorry inspect --platform linux/arm64 docker://localhost:5000/app:1
      lorry inspect -f '{{.Os}}/{{.Architecture}} {{json .RootFS.Layers}}' alpine:3.20
    """
    from lorry.cli.gotemplate import render_each
    from lorry.cli.remote_cmds import route_inspect  # here, not at import: start-up time

    template = None if fmt in (None, "json") else fmt
    if route_inspect(ctx, images, raw=raw, config=config, platform=platform, fmt=template):
        return
    with _open(ctx) as store:
        docs = [inspect_image(store, find_image(store, text)[0]) for text in images]
    if template is None:
        _json(docs)
        return
    for line in render_each(template, docs):
        click.echo(line)


@cli.command("tag")
@click.argument("source")
@click.argument("target")
@pass_context
def tag_cmd(ctx: CliContext, source: str, target: str) -> None:
    """Create the tag TARGET that refers to the image SOURCE.

    \b
    Example:
      lorry tag alpine:3.20 localhost:5000/alpine:3.20
    """
    ref = parse(target)
    if ref.digest is not None:
        raise InvalidInputError(f"tag {target}: a tag cannot contain a digest")
    ref = ref.with_default_tag()
    with _open(ctx) as store:
        image_id, _ = find_image(store, source)
        store.refs.add_tag(ref.name, ref.tag or "latest", image_id)


@cli.command("rmi")
@click.argument("images", nargs=-1, required=True)
@click.option("-f", "--force", is_flag=True, help="Delete even when other names or images use it.")
@_FORMAT
@pass_context
def rmi_cmd(ctx: CliContext, images: tuple[str, ...], force: bool, fmt: str) -> None:
    """Untag images, and delete each image whose last reference goes.

    \b
    Examples:
      lorry rmi alpine:3.20
      lorry rmi -f 1c0c1e0a9869
    """
    total = RemoveResult()
    with _open(ctx) as store:
        for text in images:
            image_id, ref = find_image(store, text)
            if ref is not None:
                result = remove_reference(store, ref)
            else:
                result = remove_image(store, image_id, force=force)
            total.untagged += result.untagged
            total.deleted += result.deleted
    if fmt == "json":
        _json(
            {
                "Untagged": [str(r) for r in total.untagged],
                "Deleted": [str(d) for d in total.deleted],
            }
        )
        return
    for r in total.untagged:
        mark = f":{r.tag}" if r.tag else f"@{r.digest}"
        click.echo(f"Untagged: {familiar_name(r.name)}{mark}")
    for d in total.deleted:
        click.echo(f"Deleted: {d}")


@cli.command("prune")
@click.option("-q", "--quiet", is_flag=True, help="Only print the total reclaimed space.")
@_FORMAT
@pass_context
def prune_cmd(ctx: CliContext, quiet: bool, fmt: str) -> None:
    """Remove unreferenced images, layers, blobs and stale partial downloads.

    \b
    Examples:
      lorry prune
      lorry prune -q
    """
    with _open(ctx) as store:
        report = prune(store)
    groups = {
        "Images": report.images,
        "Layers": report.layers,
        "Blobs": report.blobs,
        "Ingests": report.ingests,
    }
    if fmt == "json":
        _json({**{k: [str(d) for d in v] for k, v in groups.items()}, "Freed": report.freed})
        return
    if not quiet:
        for title, items in groups.items():
            if items:
                click.echo(f"Deleted {title}:")
                for item in items:
                    click.echo(f"  {item}")
    click.echo(f"Total reclaimed space: {human_size(report.freed)}")


@cli.command("fsck")
@click.option("-q", "--quiet", is_flag=True, help="Only print problems.")
@click.option(
    "--repair",
    "do_repair",
    is_flag=True,
    help="Rebuild a damaged database from the blobs (the damaged file is kept), then check.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also inflate every layer and check its DiffID (layers pulled without "
    "--verify-diffids are verified, or marked bad).",
)
@_FORMAT
@pass_context
def fsck_cmd(ctx: CliContext, quiet: bool, do_repair: bool, deep: bool, fmt: str) -> None:
    """Re-hash every blob and check every record; exit non-zero on damage.

    \b
    Examples:
      lorry fsck
      lorry fsck --deep
      lorry fsck --repair
    """
    layout = StoreLayout(resolve_root(ctx.root))
    repaired: RepairReport | None = None
    if do_repair:
        repaired = repair(layout)
        if repaired.damage is None:
            repaired = None
        elif fmt != "json":
            _print_repair(repaired, quiet)
    else:
        problem = check_database(layout)
        if problem is not None:  # the store is not opened: that would refuse it anyway
            _print_fsck(FsckReport(problems=[problem]), None, fmt, quiet)
            raise StoreError(f"store {layout.root} is damaged: {problem.message}")
    with _open(ctx) as store:
        report = fsck(store, deep=deep)
        root = store.root
    _print_fsck(report, repaired, fmt, quiet)
    if report.problems and all(p.kind == "diffid" for p in report.problems):
        first = report.problems[0]
        raise IntegrityError(f"{first.message} ({len(report.problems)} bad layers in {root})")
    if not report.ok:
        raise StoreError(f"store {root} is damaged: {len(report.problems)} problems")


def _print_repair(r: RepairReport, quiet: bool) -> None:
    """The human summary of a repair: what was moved aside, rebuilt, recovered and lost."""
    click.echo(f"database damaged: {r.damage}")
    if r.moved:
        click.echo(f"moved the damaged database aside to {r.moved[0]}")
    for digest, actual in r.corrupt:
        click.echo(f"corrupt blob {digest} (hashes to {actual}): moved to {r.moved_to}/blobs")
    for digest, why in r.skipped:
        click.echo(f"manifest {digest} not rebuilt: {why}")
    if quiet:
        return
    click.echo(
        f"rebuilt {len(r.images)} images, {r.layers} layers, {r.manifests} manifests, "
        f"{r.indexes} indexes from {r.blobs} blobs"
    )
    if r.references:
        click.echo(f"recovered {len(r.references)} references: {', '.join(r.references)}")
    if r.distmeta:
        click.echo(f"recovered {r.distmeta} distribution metadata records")
    if r.unreferenced:
        click.echo(f"kept {r.unreferenced} blobs no rebuilt image uses (lorry prune removes them)")
    for item in r.lost:
        click.echo(f"lost: {item}")


def _repair_json(r: RepairReport) -> dict[str, Any]:
    """The repair summary as the ``Repair`` member of ``fsck --format json``."""
    return {
        "Damage": r.damage,
        "MovedTo": str(r.moved_to),
        "Moved": [str(p) for p in r.moved],
        "Blobs": r.blobs,
        "Corrupt": [{"Digest": str(d), "Actual": a} for d, a in r.corrupt],
        "Images": [str(d) for d in r.images],
        "Layers": r.layers,
        "Manifests": r.manifests,
        "Indexes": r.indexes,
        "Skipped": [{"Digest": str(d), "Reason": why} for d, why in r.skipped],
        "References": r.references,
        "DistributionMetadata": r.distmeta,
        "Unreferenced": r.unreferenced,
        "Lost": r.lost,
    }


def _print_fsck(report: FsckReport, repaired: RepairReport | None, fmt: str, quiet: bool) -> None:
    """Print an fsck report (with the repair summary in JSON) in the chosen format."""
    if fmt == "json":
        doc: dict[str, Any] = {
            "Ok": report.ok,
            "Checked": {
                "Blobs": report.blobs,
                "Layers": report.layers,
                "Images": report.images,
                "References": report.references,
            },
            "Problems": [
                {"Kind": p.kind, "Name": p.name, "Message": p.message} for p in report.problems
            ],
        }
        if repaired is not None:
            doc["Repair"] = _repair_json(repaired)
        _json(doc)
        return
    for problem in report.problems:
        click.echo(str(problem))
    if not quiet:
        click.echo(
            f"checked {report.blobs} blobs, {report.layers} layers, {report.images} images, "
            f"{report.references} references: {len(report.problems)} problems"
        )
