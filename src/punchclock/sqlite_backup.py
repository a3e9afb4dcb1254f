"""Online backup and offline restore of the embedded SQLite database (`punchclock backup` and `restore`;
PostgreSQL is backed up with pgBackRest, see `pcbackup`).

A backup uses SQLite's backup API, so it is consistent while the service writes. A restore replaces the
database file and refuses while a punchclock process has the database open (each holds a shared lock on
``<database>.lock``, see ``store.sqlite.database_lock``), and refuses to overwrite an existing database
without ``force``.

Each file is written under a temporary name, fsynced, renamed into place, and then its directory is fsynced,
so a crash never leaves a half-written backup under the final name nor loses the rename. ``scheduled`` is the
timer's form (deploy/backup/systemd/punchclock-sqlite-backup.timer): a time-named copy in a directory, keeping
the newest ``keep``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from punchclock.errors import PunchclockError
from punchclock.store.sqlite import DatabaseInUse, database_lock


class BackupError(PunchclockError):
    """A backup or restore could not be done; nothing was changed."""


def verify(path: Path) -> int:
    """Check that ``path`` is an intact punchclock database; return its number of stamps."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            result = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if result != "ok":
                raise BackupError(f"{path} is corrupted: {result}")
            return int(conn.execute("SELECT count(*) FROM stamps").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a punchclock database: {exc}") from exc


def _copy(source: Path, target: Path) -> None:
    with (
        contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    with target.open("rb") as handle:
        os.fsync(handle.fileno())


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable: the new entry survives a power cut."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(database: Path, target: Path) -> int:
    """Copy the live ``database`` to ``target`` consistently; return the number of stamps copied."""
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name")
    verify(database)
    partial = target.with_name(target.name + ".partial")
    try:
        _copy(database, partial)
        count = verify(partial)
        partial.rename(target)
        fsync_directory(target.parent)
    finally:
        partial.unlink(missing_ok=True)
    return count


BACKUP_PREFIX = "punchclock-"
BACKUP_SUFFIX = ".db"


def scheduled(
    database: Path, directory: Path, keep: int = 14, now: datetime | None = None
) -> tuple[Path, int, list[Path]]:
    """Back up into ``directory/punchclock-<UTC time>.db``, then delete all but the newest ``keep`` backups.

    Returns the new file, its number of stamps and the files rotated out. Only names this function writes are
    ever rotated; a failed backup rotates nothing.
    """
    if keep < 1:
        raise BackupError("keep at least one backup")
    directory.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    target = directory / f"{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"
    count = backup(database, target)
    existing = sorted(
        path
        for path in directory.iterdir()
        if path.name.startswith(BACKUP_PREFIX) and path.name.endswith(BACKUP_SUFFIX) and path.is_file()
    )
    removed = existing[:-keep]
    for path in removed:
        path.unlink()
    if removed:
        fsync_directory(directory)
    return target, count, removed


def restore(source: Path, database: Path, force: bool = False) -> int:
    """Replace ``database`` with the backup at ``source``; return the number of stamps restored."""
    count = verify(source)
    try:
        with database_lock(database, exclusive=True):
            if database.exists() and not force:
                raise BackupError(f"{database} exists; pass --force to replace it")
            partial = database.with_name(database.name + ".restoring")
            try:
                _copy(source, partial)
                for suffix in ("-wal", "-shm"):  # the old database's log must not replay onto the new file
                    database.with_name(database.name + suffix).unlink(missing_ok=True)
                partial.replace(database)
                fsync_directory(database.parent)
            finally:
                partial.unlink(missing_ok=True)
    except DatabaseInUse as exc:
        raise BackupError(exc.detail) from None
    return count
