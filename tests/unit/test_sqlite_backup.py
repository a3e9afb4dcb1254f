"""SQLite backup and restore: consistent copies, refusals that change nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from punchclock import sqlite_backup
from punchclock.store import NewStamp
from punchclock.store.sqlite import SQLiteStore


async def make_database(path: Path, stamps: int) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.open()
    await store.migrate()
    await store.insert([NewStamp(f"k{n}", datetime.now(UTC)) for n in range(stamps)])
    return store


async def test_backup_of_a_live_database_restores_every_stamp(tmp_path: Path) -> None:
    """Given a database in use, when backed up and restored elsewhere, then every stamp is there."""
    live = await make_database(tmp_path / "live.db", 25)
    try:
        assert sqlite_backup.backup(live.path, tmp_path / "copy.db") == 25
    finally:
        await live.close()

    assert sqlite_backup.restore(tmp_path / "copy.db", tmp_path / "restored.db") == 25
    restored = SQLiteStore(tmp_path / "restored.db")
    await restored.open()
    assert len(await restored.page(100, None)) == 25
    await restored.close()


async def test_restore_is_refused_while_the_service_has_the_database_open(tmp_path: Path) -> None:
    """A restore under a running punchclock is refused with a clear reason, and nothing changes."""
    copy = tmp_path / "copy.db"
    live = await make_database(tmp_path / "live.db", 3)
    try:
        sqlite_backup.backup(live.path, copy)
        await live.insert([NewStamp("after-backup", datetime.now(UTC))])
        with pytest.raises(sqlite_backup.BackupError, match="in use by a running punchclock"):
            sqlite_backup.restore(copy, live.path, force=True)
        assert len(await live.page(100, None)) == 4
    finally:
        await live.close()


async def test_restore_will_not_overwrite_without_force(tmp_path: Path) -> None:
    """An existing database is replaced only with --force."""
    store = await make_database(tmp_path / "db.db", 2)
    sqlite_backup.backup(store.path, tmp_path / "copy.db")
    await store.close()
    with pytest.raises(sqlite_backup.BackupError, match="--force"):
        sqlite_backup.restore(tmp_path / "copy.db", tmp_path / "db.db")
    assert sqlite_backup.restore(tmp_path / "copy.db", tmp_path / "db.db", force=True) == 2


@pytest.mark.parametrize("damage", ["missing", "garbage", "truncated"])
async def test_a_bad_backup_is_reported_and_nothing_is_restored(tmp_path: Path, damage: str) -> None:
    """A missing, non-database or truncated backup is reported, and the target is left untouched."""
    store = await make_database(tmp_path / "source.db", 200)
    bad = tmp_path / "bad.db"
    sqlite_backup.backup(store.path, bad)
    await store.close()
    if damage == "missing":
        bad.unlink()
    elif damage == "garbage":
        bad.write_bytes(b"not a database at all" * 100)
    else:
        bad.write_bytes(bad.read_bytes()[: 4096 + 100])
    target = tmp_path / "target.db"

    with pytest.raises(sqlite_backup.BackupError):
        sqlite_backup.restore(bad, target)
    assert not target.exists()
