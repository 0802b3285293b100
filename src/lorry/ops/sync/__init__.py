"""``lorry sync``: mirror many repositories at once, skipping what is already there.

:mod:`~lorry.ops.sync.config` is the file's schema (docs/sync.md), :mod:`~lorry.ops.sync.plan`
turns sources into images (filters, shards), :mod:`~lorry.ops.sync.run` decides and copies them
on the copy engine, :mod:`~lorry.ops.sync.report` is what a run says it did.
"""

from lorry.ops.sync.config import (
    DestSpec,
    RegistrySpec,
    SourceSpec,
    SyncConfig,
    SyncConfigError,
    load_config,
    load_config_text,
    one_off,
)
from lorry.ops.sync.plan import Item, Shard, shard_of
from lorry.ops.sync.report import Entry, SyncReport
from lorry.ops.sync.run import SyncOptions, sync

__all__ = [
    "DestSpec",
    "Entry",
    "Item",
    "RegistrySpec",
    "Shard",
    "SourceSpec",
    "SyncConfig",
    "SyncConfigError",
    "SyncOptions",
    "SyncReport",
    "load_config",
    "load_config_text",
    "one_off",
    "shard_of",
    "sync",
]
