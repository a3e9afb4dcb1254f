"""SQLite backup and restore: consistent copies, refusals that change nothing."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
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


def test_backup_fsyncs_the_directory_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given a backup, then after the file is renamed into place its directory is fsynced, so the rename is durable."""
    database = tmp_path / "live.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE stamps (id INTEGER PRIMARY KEY, key TEXT, recorded_at TEXT)")
    target_dir = tmp_path / "backups"
    target_dir.mkdir()
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
        synced.append(("dir" if is_dir else "file", (target_dir / "copy.db").exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    sqlite_backup.backup(database, target_dir / "copy.db")
    assert synced[-1] == ("dir", True)  # the last fsync is the directory's, once the final name exists


def test_scheduled_backups_rotate_keeping_the_newest(tmp_path: Path) -> None:
    """Given five scheduled backups with keep=3, then the three newest remain, under time-ordered names."""
    database = tmp_path / "live.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE stamps (id INTEGER PRIMARY KEY, key TEXT, recorded_at TEXT)")
    (tmp_path / "backups").mkdir()
    (tmp_path / "backups" / "mine.txt").write_text("not a backup")
    made = [
        sqlite_backup.scheduled(database, tmp_path / "backups", keep=3, now=datetime(2026, 11, 27, 10, n, tzinfo=UTC))[
            0
        ]
        for n in range(5)
    ]
    left = sorted(p.name for p in (tmp_path / "backups").iterdir())
    assert left == sorted([p.name for p in made[2:]] + ["mine.txt"])


def test_backups_under_concurrent_writes_are_consistent(tmp_path: Path) -> None:
    """Given a writer committing stamps without pause, when backups run meanwhile, then every backup is intact and
    holds a prefix of the stamps (no torn copy), and the counts never go backwards."""
    database = tmp_path / "live.db"
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE stamps (id INTEGER PRIMARY KEY, key TEXT NOT NULL, recorded_at TEXT NOT NULL)")
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        with contextlib.closing(sqlite3.connect(database, timeout=30)) as conn:
            while not stop.is_set():
                with conn:
                    conn.executemany(
                        "INSERT INTO stamps (key, recorded_at) VALUES (?, ?)",
                        [(f"k{written[0]}-{n}", datetime.now(UTC).isoformat()) for n in range(50)],
                    )
                written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        counts = []
        for n in range(5):
            _, count, _ = sqlite_backup.scheduled(database, tmp_path / "backups", keep=10)
            counts.append(count)
            time.sleep(0.05 * n)
    finally:
        stop.set()
        thread.join()
    files = sorted((tmp_path / "backups").glob("punchclock-*.db"))
    for path in files:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM stamps ORDER BY id")]
        assert ids == list(range(1, len(ids) + 1))  # a whole prefix: every transaction in or out entirely
        assert len(ids) % 50 == 0
    assert (counts == sorted(counts), len(files), counts[-1] > 0) == (True, 5, True)
