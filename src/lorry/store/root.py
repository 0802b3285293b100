"""Where a store lives and how its directory is laid out (see docs/store.md).

The root is, in order of preference: the path given by the caller (``--root``), the
``LORRY_ROOT`` environment variable, or the platform's user data directory for lorry. A store
is stamped with a format version in ``lorry-store.json`` so that a later lorry can migrate it
and an older one refuses it instead of damaging it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from lorry.digest import Digest
from lorry.errors import InvalidInputError, StoreError
from lorry.store.fsutil import atomic_write, os_error
from lorry.userdirs import user_data_dir

__all__ = ["FORMAT_FILE", "FORMAT_VERSION", "StoreLayout", "default_root", "resolve_root"]

#: The on-disk layout version this code writes (see docs/store.md).
FORMAT_VERSION = 1
#: The file at the root that carries the format version.
FORMAT_FILE = "lorry-store.json"


def default_root() -> Path:
    """The store root when none is given: ``LORRY_ROOT`` or the user data directory."""
    env = os.environ.get("LORRY_ROOT")
    if env:
        return Path(env)
    return user_data_dir("lorry") / "store"


def resolve_root(root: Path | str | None) -> Path:
    """The root to use: ``root`` if given, else :func:`default_root`; made absolute."""
    return Path(root if root is not None else default_root()).absolute()


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one store root; :meth:`create` makes the directories and format stamp.

    ``ingest_dir`` names the partial-data directory under the root (another name lets a
    directory that is not a store, e.g. an OCI layout, use the same resumable ingest).
    """

    root: Path
    ingest_dir: str = "ingest"

    @property
    def blobs(self) -> Path:
        """Committed blobs, at ``blobs/<alg>/<hex>``."""
        return self.root / "blobs"

    @property
    def ingest(self) -> Path:
        """Writes in progress, at ``ingest/<alg>/<hex>.data`` with a ``.lock`` beside it."""
        return self.root / self.ingest_dir

    @property
    def database(self) -> Path:
        """The SQLite metadata database."""
        return self.root / "lorry.db"

    @property
    def store_lock(self) -> Path:
        """Shared by every process holding unreferenced content; exclusive for prune."""
        return self.root / "store.lock"

    def blob(self, digest: Digest) -> Path:
        """Where the blob with ``digest`` lives once committed."""
        return self.blobs / digest.algorithm / digest.hex

    def ingest_data(self, digest: Digest) -> Path:
        """The partial data of an ingest of ``digest``."""
        return self.ingest / digest.algorithm / f"{digest.hex}.data"

    def ingest_lock(self, digest: Digest) -> Path:
        """The lock file held by whoever is writing ``digest``."""
        return self.ingest / digest.algorithm / f"{digest.hex}.lock"

    def has_blobs(self) -> bool:
        """True when any committed blob exists: then the store's database must exist too."""
        try:
            alg_dirs = [e for e in os.scandir(self.blobs) if e.is_dir()]
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise os_error(exc, "reading", self.blobs) from exc
        for alg_dir in alg_dirs:
            with os.scandir(alg_dir.path) as entries:
                for entry in entries:
                    try:
                        Digest(alg_dir.name, entry.name)
                    except InvalidInputError:
                        continue
                    return True
        return False

    def create(self) -> None:
        """Make the directories if missing and check (or write) the format stamp."""
        try:
            for alg in ("sha256", "sha512"):
                (self.blobs / alg).mkdir(parents=True, exist_ok=True)
                (self.ingest / alg).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error(exc, "creating store", self.root) from exc
        stamp = self.root / FORMAT_FILE
        try:
            version = json.loads(stamp.read_bytes())["format"]
        except FileNotFoundError:
            atomic_write(stamp, json.dumps({"format": FORMAT_VERSION}).encode() + b"\n")
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"store {self.root}: unreadable format stamp {stamp}: {exc}") from exc
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise StoreError(
                f"store {self.root} has format {version!r}; this lorry understands up to "
                f"{FORMAT_VERSION}: upgrade lorry"
            )
