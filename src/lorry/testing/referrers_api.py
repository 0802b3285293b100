"""A registry with the OCI 1.1 referrers API: the CNCF registry (which has none) behind a proxy.

The CNCF registry 2.8 only knows the fallback tag schema. :class:`ReferrersProxy` sits in
front of it (a :class:`~lorry.testing.faultproxy.FaultProxy`, so requests are recorded and
faults still apply) and behaves as a registry with the API does:

- ``GET /v2/<name>/referrers/<digest>`` answers the index kept under the fallback tag
  ``<alg>-<hex>`` upstream (an empty index when there is none), filtered by ``artifactType``;
- a manifest ``PUT`` whose document has a ``subject`` is stored, then the proxy itself adds it
  to that index upstream and answers with the ``OCI-Subject`` header, as the spec asks;
- tag lists leave out the fallback tags, so a client can only find referrers through the API.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs

from lorry.testing._faultproxy_base import IO_TIMEOUT
from lorry.testing.faultproxy import FaultProxy, _ProxyHandler

__all__ = ["ReferrersProxy"]

_INDEX = "application/vnd.oci.image.index.v1+json"
_KEPT_HEADERS = ("location", "docker-content-digest")
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[a-z0-9]+:[a-f0-9]+)$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<name>.+)/tags/list$")
_FALLBACK_TAG = re.compile(r"^[a-z0-9]+-[a-f0-9]{32,}$")
_MAX_BODY = 4 * 1024 * 1024


def _tag(digest: str) -> str:
    return digest.replace(":", "-", 1)[:128]


class _ReferrersHandler(_ProxyHandler):
    """The fault proxy's handler with the three referrers behaviours in front of it."""

    def _proxy(self) -> None:
        path, _, query = self.path.partition("?")
        self._noted, self._fault_name = False, None  # each request is recorded once
        if self.command in ("GET", "HEAD") and (m := _REFERRERS.match(path)):
            self._referrers(m["name"], m["digest"], parse_qs(query).get("artifactType"))
        elif self.command == "PUT" and (m := _MANIFEST.match(path)):
            self._put_manifest(m["name"], m["ref"])
        elif self.command == "GET" and (m := _TAGS.match(path)):
            self._tags(path, query)
        else:
            super()._proxy()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _proxy  # noqa: N815

    def _upstream(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        owner: ReferrersProxy = self.server.owner
        conn = http.client.HTTPConnection(*owner.upstream_addr, timeout=IO_TIMEOUT)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def _index_at(self, name: str, tag: str) -> dict[str, Any]:
        status, _, raw = self._upstream(
            "GET", f"/v2/{name}/manifests/{tag}", headers={"Accept": _INDEX}
        )
        if status != 200:
            return {"schemaVersion": 2, "mediaType": _INDEX, "manifests": []}
        doc: dict[str, Any] = json.loads(raw)
        return doc

    def _referrers(self, name: str, digest: str, types: list[str] | None) -> None:
        self.drain()
        doc = self._index_at(name, _tag(digest))
        headers = {"Content-Type": _INDEX}
        if types:
            doc["manifests"] = [m for m in doc["manifests"] if m.get("artifactType") in types]
            headers["OCI-Filters-Applied"] = "artifactType"
        self._note(200)
        self.answer(200, headers, json.dumps(doc).encode())

    def _put_manifest(self, name: str, ref: str) -> None:
        body = b"".join(self.body_chunks(_MAX_BODY + 1))
        content_type = self.headers.get("Content-Type", "")
        status, headers, answer = self._upstream(
            "PUT", self.path, body=body, headers={"Content-Type": content_type}
        )
        out = {
            k: v for k, v in headers.items() if k.lower() in ("location", "docker-content-digest")
        }
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        subject = doc.get("subject") if isinstance(doc, dict) else None
        if status == 201 and isinstance(subject, dict) and "digest" in subject:
            assert isinstance(doc, dict)
            digest = next(
                (v for k, v in headers.items() if k.lower() == "docker-content-digest"), ""
            )
            entry = _entry(doc, digest, len(body), content_type)
            self._add_referrer(name, str(subject["digest"]), entry)
            out["OCI-Subject"] = str(subject["digest"])
        self._note(status)
        self.answer(status, out, answer)

    def _add_referrer(self, name: str, subject: str, entry: dict[str, Any]) -> None:
        """Put ``entry`` into the subject's fallback index upstream (once)."""
        tag = _tag(subject)
        with self.server.owner.index_lock:
            index = self._index_at(name, tag)
            if all(m.get("digest") != entry["digest"] for m in index["manifests"]):
                index["manifests"].append(entry)
            self._upstream(
                "PUT",
                f"/v2/{name}/manifests/{tag}",
                body=json.dumps(index).encode(),
                headers={"Content-Type": _INDEX},
            )

    def _tags(self, path: str, query: str) -> None:
        self.drain()
        status, headers, raw = self._upstream("GET", self.path)
        if status == 200:
            doc = json.loads(raw)
            doc["tags"] = [t for t in doc.get("tags") or [] if not _FALLBACK_TAG.match(t)]
            raw = json.dumps(doc).encode()
        out = {k: v for k, v in headers.items() if k.lower() in ("content-type", "link")}
        self._note(status)
        self.answer(status, out, raw)


def _entry(doc: dict[str, Any], digest: str, size: int, content_type: str) -> dict[str, Any]:
    """The referrers-index descriptor of a pushed manifest, as the spec builds it."""
    entry: dict[str, Any] = {
        "mediaType": doc.get("mediaType") or content_type,
        "digest": digest,
        "size": size,
    }
    artifact = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
    if artifact:
        entry["artifactType"] = artifact
    if doc.get("annotations"):
        entry["annotations"] = doc["annotations"]
    return entry


class ReferrersProxy(FaultProxy):
    """The upstream CNCF registry as a registry with the referrers API (module docstring)."""

    _handler = _ReferrersHandler

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        #: Serialises read-modify-write of a fallback index upstream.
        self.index_lock = threading.Lock()

    @property
    def upstream_addr(self) -> tuple[str, int]:
        """Where the upstream registry listens."""
        return self._upstream_addr
