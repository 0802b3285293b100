"""The fallback tag schema's pure parts: the tag of a subject and the merged index."""

from __future__ import annotations

import json

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.oci import Descriptor
from lorry.registry.referrers import fallback_tag, merged_index


def _desc(text: bytes, artifact: str = "application/spdx+json") -> Descriptor:
    return Descriptor(mt.OCI_MANIFEST, Digest.of(text), len(text), artifact_type=artifact)


def test_the_fallback_tag_is_alg_dash_hex() -> None:
    d = Digest.of(b"x")
    assert fallback_tag(d) == f"sha256-{d.hex}"


def test_merging_keeps_what_is_there_and_adds_only_new_digests() -> None:
    a, b, c = _desc(b"a"), _desc(b"b"), _desc(b"c", "application/vnd.dev.sigstore.bundle+json")
    first = merged_index(None, [a, b, a])
    assert [d.digest for d in first.manifests] == [a.digest, b.digest]
    again = merged_index(first.raw, [b, c])
    assert [d.digest for d in again.manifests] == [a.digest, b.digest, c.digest]
    assert json.loads(again.raw)["manifests"][2]["artifactType"] == c.artifact_type
    assert merged_index(again.raw, [a]).raw == again.raw  # nothing new: the same document


def test_a_tag_that_is_not_an_index_is_replaced_by_one() -> None:
    a = _desc(b"a")
    assert [d.digest for d in merged_index(b'{"not": "an index"}', [a]).manifests] == [a.digest]
