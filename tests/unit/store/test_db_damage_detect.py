"""``database_damage``: which database files are damage, which are a store not made yet."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lorry.errors import StoreError
from lorry.store import Store
from lorry.store.db import SCHEMA_VERSION, Database, database_damage


def _yes() -> bool:
    return True


def _no() -> bool:
    return False


def _sqlite(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()


def test_missing_or_empty_is_damage_only_when_blobs_exist(tmp_path: Path) -> None:
    db = tmp_path / "lorry.db"
    assert database_damage(db, _no) is None
    assert "missing" in (database_damage(db, _yes) or "")
    db.write_bytes(b"")
    assert database_damage(db, _no) is None
    assert "empty (0 bytes)" in (database_damage(db, _yes) or "")
    _sqlite(db, "PRAGMA user_version = 0")  # a valid SQLite file with nothing in it
    assert database_damage(db, _no) is None
    assert "no tables" in (database_damage(db, _yes) or "")


def test_not_sqlite_or_foreign_schema_is_damage(tmp_path: Path) -> None:
    db = tmp_path / "lorry.db"
    db.write_bytes(b"SQLite format 2\x00" + b"\x00" * 5000)
    assert database_damage(db, _no) == "is not an SQLite database"
    db.unlink()
    _sqlite(db, "CREATE TABLE other (x)")
    assert "no lorry schema version" in (database_damage(db, _no) or "")
    db.unlink()
    _sqlite(db, "CREATE TABLE images (id)", "PRAGMA user_version = 1")
    assert "lacks the table" in (database_damage(db, _no) or "")


def test_a_changed_table_is_damage(tmp_path: Path) -> None:
    with Store.open(tmp_path / "root") as store:
        store.refs.db.close()
    db = tmp_path / "root" / "lorry.db"
    _sqlite(db, "DROP TABLE refs", "CREATE TABLE refs (name TEXT)")
    assert "has table refs with columns" in (database_damage(db, _yes) or "")
    with pytest.raises(StoreError, match=r"lorry\.db has table refs.*lorry fsck --repair"):
        Store.open(tmp_path / "root")


def test_a_sound_or_newer_database_is_not_damage(tmp_path: Path) -> None:
    with Store.open(tmp_path / "root") as store:
        store.content.put_bytes(b"x")
    db = tmp_path / "root" / "lorry.db"
    before = db.read_bytes()
    assert database_damage(db, _yes) is None
    assert db.read_bytes() == before  # the check never writes
    _sqlite(db, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    assert database_damage(db, _yes) is None  # not damage: Database says "upgrade lorry"
    with pytest.raises(StoreError, match="upgrade lorry"):
        Database(db)


def test_store_open_refuses_damage_without_writing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with Store.open(root) as store:
        store.content.put_bytes(b"blob")
    (root / "lorry.db").write_bytes(b"")
    with pytest.raises(StoreError) as err:
        Store.open(root)
    assert "\n" not in str(err.value) and str(root / "lorry.db") in str(err.value)
    assert err.value.exit_code == 8
    assert (root / "lorry.db").read_bytes() == b""
    assert not (root / "lorry.db-wal").exists()
