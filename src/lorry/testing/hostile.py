"""A hostile registry: a small Distribution-API server that serves what a test crafts, badly.

The CNCF registry behind :mod:`lorry.testing.faultproxy` only stores what clients push and
answers promptly; a registry that wants to hurt its clients does neither. A
:class:`HostileRegistry` listens on 127.0.0.1 and speaks just enough of the API for a client to
pull: ``GET /v2/``, manifest ``GET``/``HEAD`` by tag and by digest, blob ``GET``/``HEAD``
(``Range: bytes=N-`` too), ``/tags/list``, and — with ``token_auth=True`` — a Bearer challenge
whose realm is its own ``/token`` endpoint. Writes are refused (405).

What it serves is whatever the test puts in: :meth:`~HostileRegistry.add_manifest`,
:meth:`~HostileRegistry.add_blob`, :meth:`~HostileRegistry.add_image`,
:meth:`~HostileRegistry.set_tags`; the builders below make the documents hostile clients meet:

- :func:`layered_image` — an image of ``n`` tiny, distinct, valid gzip layers (10,000 is cheap);
- :func:`wide_index` — an index listing one manifest ``n`` times;
- :func:`nested_json` and :func:`image_with_config` — JSON nested 100,000 deep, as a manifest
  or as the config of an otherwise valid image;
- :data:`OSC_TITLE`, :data:`CSI_RED` and :data:`HOSTILE_TAGS` — terminal escapes and path
  tricks for tag lists and error messages.

How it answers is set by :class:`Behaviour` rules, given at construction or with
:meth:`~HostileRegistry.behave`: the first rule whose ``on`` (the kind of request, see
:data:`Kind`), ``method`` and remaining ``times`` match decides. A rule may replace the answer
(``reply=ErrorReply(...)``: a distribution-spec error body with any message) and may pace it
(``pace=Drip(1.0)``: the body — or with ``head=True`` the whole response — at that many bytes
per second; ``pace=Silence()``: headers never come). Everything is counted:
:meth:`~HostileRegistry.blob_gets` (every blob GET, whatever a rule did with it) and
:attr:`~HostileRegistry.requests`.

Example::

    with HostileRegistry(token_auth=True) as reg:
        reg.add_image("app", "v1", layered_image(10_000))
        reg.behave(Behaviour("token", pace=Drip(1.0)))
        ...  # point the client at reg.host; assert reg.blob_gets() == 0

Every wait ends when the server stops: :meth:`~HostileRegistry.stop` cuts open connections,
wakes dripping and silent handlers, and joins every thread.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import Message
from functools import lru_cache
from typing import Literal
from urllib.parse import unquote

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import InvalidInputError
from lorry.testing._faultproxy_base import LoopbackServer, ServingBase, StreamingHandler

__all__ = [
    "CSI_RED",
    "HOSTILE_TAGS",
    "OSC_TITLE",
    "TOKEN",
    "Behaviour",
    "Document",
    "Drip",
    "ErrorReply",
    "HostileRegistry",
    "HostileRequest",
    "Image",
    "Kind",
    "Silence",
    "image_of_tars",
    "image_with_config",
    "layered_image",
    "nested_json",
    "wide_index",
]

#: An OSC sequence that retitles a terminal window (and ends with BEL).
OSC_TITLE = "\x1b]0;owned by the registry\x07"
#: A CSI sequence that turns terminal text red.
CSI_RED = "\x1b[31m"
#: A tag list no client should print or use as given: a good tag among path tricks and escapes.
HOSTILE_TAGS = ("good", "../../x", "..", f"{OSC_TITLE}title", f"{CSI_RED}red", "a/b", "ok\x07")
#: The one Bearer token the token endpoint issues and the registry accepts.
TOKEN = "hostile-token"

#: What a request is: ``ping`` (``/v2/``), ``challenge`` (a 401 for a request without the
#: token), ``manifest``, ``blob``, ``tags``, ``token`` (the token endpoint), ``other``.
Kind = Literal["ping", "challenge", "manifest", "blob", "tags", "token", "other"]


@dataclass(frozen=True)
class ErrorReply:
    """Answer ``status`` with a distribution-spec error body carrying ``code`` and ``message``."""

    status: int = 500
    message: str = "hostile failure"
    code: str = "UNKNOWN"


@dataclass(frozen=True)
class Drip:
    """Send the body ``bytes_per_second`` (``head=True``: the status line and headers too)."""

    bytes_per_second: float = 1.0
    head: bool = False


@dataclass(frozen=True)
class Silence:
    """Read the request and never answer: the response head never comes."""


@dataclass(frozen=True)
class Behaviour:
    """One rule: for requests of kind ``on`` (and ``method``, if given), at most ``times``
    times (None: always), answer ``reply`` instead of the normal answer, sent as ``pace`` says."""

    on: Kind
    reply: ErrorReply | None = None
    pace: Drip | Silence | None = None
    method: str | None = None
    times: int | None = None


@dataclass(frozen=True)
class HostileRequest:
    """One request the registry received: its method, path (with query) and kind."""

    method: str
    path: str
    kind: Kind


@dataclass(frozen=True)
class Document:
    """A manifest or index: exact bytes and media type; its digest is the sha256 of the bytes."""

    raw: bytes
    media_type: str

    @property
    def digest(self) -> Digest:
        """The sha256 digest of :attr:`raw`."""
        return Digest.of(self.raw)


@dataclass(frozen=True)
class Image:
    """An image as the registry serves it: the manifest, its config blob and its layer blobs."""

    manifest: Document
    config: bytes
    layers: tuple[bytes, ...] = ()


def nested_json(depth: int) -> bytes:
    """A JSON array nested ``depth`` deep (``[[[...]]]``): valid, and deadly to recursion."""
    return b"[" * depth + b"]" * depth


def _descriptor(media_type: str, data: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(Digest.of(data)), "size": len(data)}


def _manifest(config: bytes, layers: Sequence[bytes]) -> Document:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": _descriptor(mt.OCI_CONFIG, config),
        "layers": [_descriptor(mt.OCI_LAYER_GZIP, layer) for layer in layers],
    }
    return Document(json.dumps(doc, separators=(",", ":")).encode(), mt.OCI_MANIFEST)


def _config(diff_ids: Sequence[str]) -> bytes:
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _tiny_layer(index: int) -> tuple[bytes, str]:
    """A gzip tar holding one small file unique to ``index``, and its DiffID."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = f"layer {index}\n".encode()
        info = tarfile.TarInfo(f"layer-{index}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    return gzip.compress(raw, compresslevel=1, mtime=0), str(Digest.of(raw))


@lru_cache(maxsize=4)
def layered_image(layers: int) -> Image:
    """A valid image of ``layers`` tiny distinct gzip layers (cached: building is not free)."""
    built = [_tiny_layer(i) for i in range(layers)]
    config = _config([diff for _, diff in built])
    blobs = tuple(blob for blob, _ in built)
    return Image(_manifest(config, blobs), config, blobs)


def image_of_tars(tars: Sequence[bytes]) -> Image:
    """A valid image whose layers are these tars (gzip-compressed, DiffIDs true), bottom first."""
    blobs = tuple(gzip.compress(t, compresslevel=1, mtime=0) for t in tars)
    config = _config([str(Digest.of(t)) for t in tars])
    return Image(_manifest(config, blobs), config, blobs)


def image_with_config(config: bytes) -> Image:
    """An image with one real layer and ``config`` (e.g. :func:`nested_json`) as its config."""
    blob, _ = _tiny_layer(0)
    return Image(_manifest(config, [blob]), config, (blob,))


def wide_index(child: Document, entries: int, platform: str = "linux/amd64") -> Document:
    """An OCI index listing ``child`` ``entries`` times, every entry for ``platform``."""
    os_name, _, arch = platform.partition("/")
    entry = {
        **_descriptor(child.media_type, child.raw),
        "platform": {"architecture": arch, "os": os_name},
    }
    doc = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [entry] * entries}
    return Document(json.dumps(doc, separators=(",", ":")).encode(), mt.OCI_INDEX)


@dataclass
class _Rule:
    """A behaviour and how many more times it may act (None: always)."""

    behaviour: Behaviour
    left: int | None


@dataclass
class _Reply:
    """An answer before any rule paces it."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def _error(status: int, code: str, message: str) -> _Reply:
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return _Reply(status, {"Content-Type": "application/json"}, body)


class _Handler(StreamingHandler):
    """Routes a request, lets the first matching rule change it, and sends it at its pace."""

    server: LoopbackServer

    def _serve(self) -> None:
        reg: HostileRegistry = self.server.owner
        self.drain()
        kind, reply = reg._route(self.command, self.path, self.headers)
        rule = reg._take(kind, self.command, self.path)
        if rule is not None and rule.reply is not None:
            r = rule.reply
            reply = _error(r.status, r.code, r.message)
        pace = rule.pace if rule is not None else None
        if isinstance(pace, Silence):
            reg._stopping.wait()
            self.abort(reset=False)
            return
        try:
            self._send(reply, pace, reg._stopping)
        except OSError:
            self.abort(reset=False)

    def _send(self, reply: _Reply, pace: Drip | None, stopping: threading.Event) -> None:
        """Write the reply; a :class:`Drip` spreads it at its rate (ends if the server stops)."""
        lines = [f"HTTP/1.1 {reply.status} {self.responses.get(reply.status, ('',))[0]}"]
        headers = {"Content-Length": str(len(reply.body)), **reply.headers}
        lines += [f"{name}: {value}" for name, value in headers.items()]
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        body = b"" if self.command == "HEAD" else reply.body
        if pace is None:
            self.wfile.write(head + body)
            return
        slow = head + body if pace.head else body
        if not pace.head:
            self.wfile.write(head)
            self.wfile.flush()
        rate = pace.bytes_per_second
        step = max(1, int(rate / 100))  # about a hundred writes a second at most
        start = time.monotonic()
        for sent in range(0, len(slow), step):
            self.wfile.write(slow[sent : sent + step])
            self.wfile.flush()
            due = start + (sent + step) / rate
            if stopping.wait(max(0.0, due - time.monotonic())):
                self.abort(reset=False)
                return

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815


class HostileRegistry(ServingBase):
    """A loopback registry that serves crafted content under configurable bad behaviour.

    See the module docstring. Thread-safe: content and rules may change while it serves.
    """

    _handler = _Handler

    def __init__(self, *, token_auth: bool = False, behaviours: Sequence[Behaviour] = ()) -> None:
        super().__init__()
        self.token_auth = token_auth
        self._rules: list[_Rule] = []
        self._manifests: dict[str, dict[str, Document]] = {}
        self._blobs: dict[str, bytes] = {}
        self._tags: dict[str, list[str]] = {}
        self._gets: Counter[str] = Counter()
        self._requests: list[HostileRequest] = []
        self._stopping = threading.Event()
        self.behave(*behaviours)

    def __enter__(self) -> HostileRegistry:
        self.start()
        return self

    def start(self) -> None:
        """Listen on a free port of 127.0.0.1 and serve in background threads."""
        self._stopping.clear()
        super().start()

    def _before_stop(self) -> None:
        """Wake every dripping or silent handler so it ends."""
        self._stopping.set()

    # -- content ------------------------------------------------------------------------------

    def behave(self, *behaviours: Behaviour) -> None:
        """Add rules after the ones already given (the first that matches a request decides)."""
        for b in behaviours:
            if b.times is not None and b.times < 1:
                raise InvalidInputError(f"behaviour {b}: times must be at least 1")
            if isinstance(b.pace, Drip) and b.pace.bytes_per_second <= 0:
                raise InvalidInputError(f"behaviour {b}: bytes_per_second must be positive")
        with self._lock:
            self._rules += [_Rule(b, b.times) for b in behaviours]

    def add_blob(self, data: bytes) -> Digest:
        """Serve ``data`` as a blob (in every repository); return its digest."""
        digest = Digest.of(data)
        with self._lock:
            self._blobs[str(digest)] = data
        return digest

    def add_manifest(self, repository: str, doc: Document, tag: str | None = None) -> Digest:
        """Serve ``doc`` in ``repository`` by its digest, and by ``tag`` if given."""
        with self._lock:
            refs = self._manifests.setdefault(repository, {})
            refs[str(doc.digest)] = doc
            if tag is not None:
                refs[tag] = doc
        return doc.digest

    def add_image(self, repository: str, tag: str, image: Image) -> Digest:
        """Serve the image's blobs and its manifest under ``tag``; return the manifest digest."""
        for blob in (image.config, *image.layers):
            self.add_blob(blob)
        return self.add_manifest(repository, image.manifest, tag)

    def set_tags(self, repository: str, names: Sequence[str]) -> None:
        """The tag list ``repository`` answers, verbatim (escapes, ``../`` and all)."""
        with self._lock:
            self._tags[repository] = list(names)

    # -- what happened ------------------------------------------------------------------------

    def blob_gets(self, digest: Digest | str | None = None) -> int:
        """How many blob GETs arrived (for one digest, or in all)."""
        with self._lock:
            return self._gets[str(digest)] if digest is not None else sum(self._gets.values())

    @property
    def requests(self) -> list[HostileRequest]:
        """Every request received, in order."""
        with self._lock:
            return list(self._requests)

    # -- serving ------------------------------------------------------------------------------

    def _take(self, kind: Kind, method: str, path: str) -> Behaviour | None:
        """Record the request; the first rule that matches it (using up one of its times)."""
        with self._lock:
            self._requests.append(HostileRequest(method, path, kind))
            for rule in self._rules:
                b = rule.behaviour
                if b.on != kind or (b.method is not None and b.method != method) or rule.left == 0:
                    continue
                if rule.left is not None:
                    rule.left -= 1
                return b
        return None

    def _route(self, method: str, target: str, headers: Message) -> tuple[Kind, _Reply]:
        """The request's kind and the answer a well-behaved registry would give."""
        path, _, _query = target.partition("?")
        if path == "/token":
            body = json.dumps({"token": TOKEN, "access_token": TOKEN, "expires_in": 300})
            return "token", _Reply(200, {"Content-Type": "application/json"}, body.encode())
        if not path.startswith("/v2/"):
            return "other", _error(404, "NOT_FOUND", "not a registry path")
        if self.token_auth and headers.get("Authorization") != f"Bearer {TOKEN}":
            realm = f"{self.url}/token"
            reply = _error(401, "UNAUTHORIZED", "authentication required")
            reply.headers["WWW-Authenticate"] = f'Bearer realm="{realm}",service="hostile"'
            return "challenge", reply
        if path == "/v2/":
            return "ping", _Reply(200, {"Content-Type": "application/json"}, b"{}")
        if method not in ("GET", "HEAD"):
            return "other", _error(405, "UNSUPPORTED", "this registry is read-only")
        rest = path[len("/v2/") :]
        for marker, kind in (("/manifests/", "manifest"), ("/blobs/", "blob")):
            repo, found, ref = rest.rpartition(marker)
            if found and repo and "/" not in ref:
                if kind == "manifest":
                    return "manifest", self._manifest_reply(unquote(repo), unquote(ref))
                return "blob", self._blob_reply(method, unquote(ref), headers.get("Range"))
        repo, found, tail = rest.rpartition("/tags/list")
        if found and repo and not tail:
            with self._lock:
                names = self._tags.get(unquote(repo))
            if names is None:
                return "tags", _error(404, "NAME_UNKNOWN", "repository name not known")
            listing = json.dumps({"name": unquote(repo), "tags": names}).encode()
            return "tags", _Reply(200, {"Content-Type": "application/json"}, listing)
        return "other", _error(404, "NOT_FOUND", "not a registry path")

    def _manifest_reply(self, repository: str, ref: str) -> _Reply:
        with self._lock:
            doc = self._manifests.get(repository, {}).get(ref)
        if doc is None:
            return _error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        headers = {"Content-Type": doc.media_type, "Docker-Content-Digest": str(doc.digest)}
        return _Reply(200, headers, doc.raw)

    def _blob_reply(self, method: str, digest: str, range_header: str | None) -> _Reply:
        with self._lock:
            data = self._blobs.get(digest)
            if method == "GET":
                self._gets[digest] += 1
        if data is None:
            return _error(404, "BLOB_UNKNOWN", "blob unknown to registry")
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}
        start = _range_start(range_header)
        if start is None or start == 0:
            return _Reply(200, headers, data)
        if start >= len(data):
            return _Reply(416, {"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return _Reply(206, headers, data[start:])


def _range_start(value: str | None) -> int | None:
    """N of a ``bytes=N-`` range, or None for any other (or no) Range header."""
    if value is None or not value.startswith("bytes=") or not value.endswith("-"):
        return None
    text = value[len("bytes=") : -1]
    return int(text) if text.isdigit() else None
