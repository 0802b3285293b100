"""Tag listing and the catalog, following ``Link`` pagination.

Registries page these lists: the reply carries ``Link: <url>; rel="next"`` (often relative),
which is followed until it stops. Some registries return fewer than ``n`` entries without a
Link; that ends the list too. ``n`` is capped at 1000 (ECR rejects more).
"""

from __future__ import annotations

import re
from urllib.parse import urljoin

from lorry._reference_grammar import ANCHORED_PATH_RE, NAME_TOTAL_LENGTH_MAX, TAG_RE
from lorry.errors import InvalidInputError, UnavailableError
from lorry.oci._json import parse_json
from lorry.registry.config import Endpoint
from lorry.registry.redact import get_logger
from lorry.registry.repo import RepoContext
from lorry.registry.session import Response
from lorry.registry.transport import Transport

__all__ = [
    "MAX_PAGE_SIZE",
    "catalog",
    "list_tags",
    "next_link",
    "valid_repositories",
    "valid_tags",
]

log = get_logger(__name__)

#: The largest page size asked for.
MAX_PAGE_SIZE = 1000
_MAX_PAGE_BYTES = 16 * 1024 * 1024
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")


def next_link(headers: list[str], base_url: str) -> str | None:
    """The absolute ``rel="next"`` URL among ``Link`` header values, if any."""
    for header in headers:
        for m in _LINK.finditer(header):
            params = m.group(2).lower()
            if re.search(r'rel\s*=\s*"?[^";]*\bnext\b', params):
                return str(urljoin(base_url, m.group(1)))
    return None


def list_tags(ctx: RepoContext, page_size: int | None = None) -> list[str]:
    """Every tag of the repository, in the order the registry lists them."""
    what = f"listing tags of {ctx.name}"
    endpoint = ctx.endpoint
    url = ctx.url(endpoint, "/tags/list" + _n(page_size))
    scopes = [f"repository:{ctx.repository}:pull"]
    names = _paginate(
        ctx.transport, endpoint=endpoint, url=url, key="tags", scopes=scopes, what=what
    )
    return valid_tags(names, what)


def valid_tags(names: list[str], what: str) -> list[str]:
    """The names that are tags by the reference grammar; the others dropped with one warning.

    A hostile registry may list ``../../x`` or terminal escape sequences: they never reach a
    caller (a path, a terminal, a reference).
    """
    good = [n for n in names if TAG_RE.fullmatch(n)]
    if len(good) != len(names):
        log.warning("%s: skipped %d names that are not valid tags", what, len(names) - len(good))
    return good


def catalog(transport: Transport, endpoint: Endpoint, page_size: int | None = None) -> list[str]:
    """Every repository the registry lists in ``/v2/_catalog``."""
    what = f"listing repositories of {endpoint.auth_name}"
    url = f"{endpoint.base_url}/v2/_catalog" + _n(page_size)
    scopes = ["registry:catalog:*"]
    names = _paginate(
        transport, endpoint=endpoint, url=url, key="repositories", scopes=scopes, what=what
    )
    return valid_repositories(names, what)


def valid_repositories(names: list[str], what: str) -> list[str]:
    """The names that are repository paths by the reference grammar; others dropped, warned once."""
    good = [n for n in names if len(n) <= NAME_TOTAL_LENGTH_MAX and ANCHORED_PATH_RE.fullmatch(n)]
    if len(good) != len(names):
        log.warning(
            "%s: skipped %d names that are not valid repositories", what, len(names) - len(good)
        )
    return good


def _n(page_size: int | None) -> str:
    """The ``?n=`` query for a page size (capped), or nothing."""
    if page_size is None:
        return ""
    if page_size < 1:
        raise InvalidInputError(f"page size must be at least 1, not {page_size}")
    return f"?n={min(page_size, MAX_PAGE_SIZE)}"


def _paginate(
    transport: Transport,
    *,
    endpoint: Endpoint,
    url: str,
    key: str,
    scopes: list[str],
    what: str,
) -> list[str]:
    """Follow ``Link`` from page to page, collecting ``key``'s list."""
    out: list[str] = []
    seen: set[str] = set()
    next_url: str | None = url
    while next_url is not None:
        if next_url in seen:
            raise UnavailableError(f"{what}: pagination loops back to a page already read")
        seen.add(next_url)
        resp = transport.request("GET", next_url, endpoint=endpoint, scopes=scopes, what=what)
        with resp:
            out += _page(resp, key, what)
            next_url = next_link(resp.header_all("Link"), resp.url)
    return out


def _page(resp: Response, key: str, what: str) -> list[str]:
    """The names on one page."""
    raw, longer = resp.read_capped(_MAX_PAGE_BYTES)
    if longer:
        raise UnavailableError(f"{what}: page larger than {_MAX_PAGE_BYTES} bytes")
    try:
        doc = parse_json(raw)
    except ValueError as exc:
        raise UnavailableError(f"{what}: reply is not JSON") from exc
    items = doc.get(key) if isinstance(doc, dict) else None
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise UnavailableError(f"{what}: {key!r} is not a list of names")
    return list(items)
