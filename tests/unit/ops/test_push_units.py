"""Pure parts of push: mount candidates, target names, planning, foreign-layer skips."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import cast

import anyio
import pytest

from lorry import mediatypes as mt
from lorry.digest import Digest
from lorry.errors import CancelledError, InvalidInputError, LorryError
from lorry.oci import Descriptor, Index, Manifest
from lorry.ops.blob_move import PUSH_WORDS, BlobCopy
from lorry.ops.push import _allowed, _target
from lorry.progress import ProgressEvent
from lorry.reference import parse
from lorry.registry.client import RegistryClient
from lorry.store import Store
from lorry.store.distmeta import RemoteBlob
from lorry.store.references import Ref
from lorry.testing.builder import build_image
from lorry.testing.store_fill import fill_store
from lorry.transports import ImageSource
from lorry.transports.registry import RegistryDestination, refuses_monolithic
from lorry.transports.store_memory import mount_candidates
from lorry.transports.store_plan import build_manifest, plan_push

D1 = Digest.of(b"one")
D2 = Digest.of(b"two")


def remote(repo: str, blob: Digest = D1, updated: float = 0.0) -> RemoteBlob:
    return RemoteBlob(D1, blob, "r.example", repo, "", updated)


def test_mount_candidates_prefer_shared_path_then_recency_and_respect_the_budget() -> None:
    records = [  # newest first, as distmeta returns them
        remote("other/x"),
        remote("team/app/old"),
        remote("team/base"),
        remote("team/app/dst"),  # the target itself
        remote("team/wrong-blob", blob=D2),
        remote("team/base"),  # duplicate
    ]
    assert mount_candidates(records, D1, "team/app/dst", 11_000_000) == [
        "team/app/old",
        "team/base",
        "other/x",
    ]
    assert mount_candidates(records, D1, "team/app/dst", 50_000) == ["team/app/old"]
    assert mount_candidates([], D1, "team/app/dst", 50_000) == []


@pytest.mark.parametrize(
    ("status", "codes", "refused"),
    [
        (405, (), True),
        (413, (), True),
        (501, (), True),
        (400, ("UNSUPPORTED",), True),
        (400, ("DIGEST_INVALID",), False),
        (500, (), False),
        (None, (), False),
    ],
)
def test_which_failures_mean_send_chunks(
    status: int | None, codes: tuple[str, ...], refused: bool
) -> None:
    assert refuses_monolithic(LorryError("x", status=status, codes=codes)) is refused


def test_target_names() -> None:
    src_ref = Ref("docker.io/team/app", "v3", None, D1)
    assert str(_target("r.example/a/b", None, src_ref)) == "r.example/a/b:latest"
    assert str(_target("x", "r.example/a/b", src_ref)) == "r.example/a/b:v3"
    assert str(_target("x", parse("r.example/a/b:v9"), src_ref)) == "r.example/a/b:v9"
    with pytest.raises(InvalidInputError, match="cannot push a digest reference"):
        _target("x", f"r.example/a@{D1}", src_ref)
    with pytest.raises(InvalidInputError, match="no registry host"):
        _target("x", "foo_bar.com/app", src_ref)
    with pytest.raises(InvalidInputError, match="give a destination"):
        _target(str(D1), None, None)


def test_nondistributable_allowed_by_registry_name_or_pattern() -> None:
    ref = parse("r.example:5000/team/app:v1")
    assert _allowed(ref, ["r.example:5000"])
    assert _allowed(ref, ["*"])
    assert _allowed(ref, ["r.example:5000/team/*"])
    assert not _allowed(ref, ["other.example"])
    assert not _allowed(ref, [])


class _Progress:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def emit(self, event: ProgressEvent) -> None:
        self.events.append(event)

    @contextmanager
    def exempt(self) -> Iterator[None]:
        yield


def test_foreign_layer_is_skipped_without_touching_the_registry() -> None:
    client = cast(RegistryClient, type("C", (), {"registry": "r.example", "repository": "a"})())
    dest = RegistryDestination(client, "v1")
    desc = Descriptor(mt.DOCKER_FOREIGN_LAYER, D1, 10, urls=("https://x.example/l",))
    push = BlobCopy(cast(ImageSource, None), dest, desc, words=PUSH_WORDS, line_id=D2.short)
    progress = _Progress()
    assert anyio.run(push.upload, progress) == desc
    assert [(e.id, e.status) for e in progress.events] == [(D2.short, "Skipped foreign layer")]
    assert push.key() == f"push:r.example/a@{D1}"
    push.close()
    with pytest.raises(CancelledError):
        anyio.run(push.upload, progress)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "store") as s:
        yield s


def test_plan_resends_the_recorded_manifest(store: Store, tmp_path: Path) -> None:
    built = build_image(tmp_path / "img", layers=2, seed=731, media_types="docker")
    image = fill_store(store, built.layout, "r.example/a:v1")
    plan = plan_push(store, image.id, store.refs.get("r.example/a", tag="v1"))
    assert (plan.raw, plan.digest, plan.built) == (
        built.manifest_bytes,
        built.manifest_digest,
        False,
    )
    assert [lb.desc.digest for lb in plan.layers] == built.layer_digests[::-1]
    assert [lb.diff_id for lb in plan.layers] == built.diff_ids[::-1]
    assert [c.digest for c in plan.configs] == [built.config_digest]


def test_plan_pushes_a_complete_index_and_falls_back_when_a_child_is_missing(
    store: Store, tmp_path: Path
) -> None:
    built = build_image(
        tmp_path / "img", layers=1, seed=732, platforms=["linux/amd64", "linux/arm64"]
    )
    image = fill_store(store, built.layout, "r.example/m:v1", all_platforms=True)
    plan = plan_push(store, image.id)
    assert plan.digest == built.index_digest
    assert [c.digest for c in plan.children] == [m.digest for m in Index.parse(plan.raw).manifests]
    assert len(plan.layers) == 2 and len(plan.configs) == 2
    store.content.delete(built.children[1].layer_digests[0])  # another platform's layer is gone
    plan = plan_push(store, image.id)
    assert plan.digest == built.children[0].manifest_digest and not plan.children


def test_built_manifest_is_deterministic(store: Store, tmp_path: Path) -> None:
    built = build_image(tmp_path / "img", layers=2, seed=733)
    image = fill_store(store, built.layout, "r.example/b:v1")
    first = build_manifest(store, image.id)
    assert first.raw == build_manifest(store, image.id).raw
    parsed = Manifest.parse(first.raw)
    assert parsed.media_type == mt.OCI_MANIFEST
    assert [d.digest for d in parsed.layers] == built.layer_digests
    assert [d.size for d in parsed.layers] == built.layer_sizes
    assert parsed.config == Descriptor(mt.OCI_CONFIG, built.config_digest, len(built.config_bytes))
