"""What the sync tests share: images with a common base seeded into a registry, digest checks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from lorry.digest import Digest
from lorry.registry.client import RegistrySession
from lorry.testing.builder import BuiltImage, LayerSpec, build_image
from lorry.testing.registry import RegistryServer
from lorry.testing.skopeo import push_layout

BASE = LayerSpec(files=8, size=24_000)


@dataclass(frozen=True)
class Seeded:
    """Images pushed to a registry: ``(repository, tag) → built image``."""

    host: str
    images: dict[tuple[str, str], BuiltImage]

    def blob_sizes(self) -> dict[Digest, int]:
        """Every distinct blob (layers and configs) of every image, with its size."""
        out: dict[Digest, int] = {}
        for built in self.images.values():
            for one in built.children or [built]:
                out.update(zip(one.layer_digests, one.layer_sizes, strict=True))
                out[one.config_digest] = len(one.config_bytes)
        return out


def seed(
    registry: RegistryServer, work: Path, repos: list[str], tags: list[str], *, top: int = 4_000
) -> Seeded:
    """Push ``repos × tags`` small images sharing one base layer (each its own top layer)."""
    images: dict[tuple[str, str], BuiltImage] = {}
    n = 0
    for repo in repos:
        for tag in tags:
            n += 1
            layers = [BASE, LayerSpec(files=2 + n, size=top + n)]
            built = build_image(work / f"img-{n}", layers=layers, seed=77, tag=tag)
            push_layout(built, registry, repo, tag)
            images[(repo, tag)] = built
    return Seeded(registry.host, images)


def head(host: str, repo: str, tag: str) -> Digest | None:
    """The digest ``host/repo:tag`` holds, or None."""
    with RegistrySession() as session:
        info = session.client(host, repo).head_manifest(tag)
    return info.digest if info is not None else None


def write_config(path: Path, text: str) -> Path:
    """Write a sync file and return its path."""
    path.write_text(text)
    return path


def read_report(path: Path) -> list[dict[str, object]]:
    """The ``images`` list of a --report file."""
    return list(json.loads(path.read_text())["images"])
