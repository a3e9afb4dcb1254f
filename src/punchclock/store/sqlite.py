"""SQLite backend: the embedded default. One connection on one dedicated thread; WAL mode with
``synchronous=FULL`` so a commit is on disk before it returns."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from punchclock.errors import PunchclockError, StorageError, TransientStorageError
from punchclock.store.base import MAX_ID, NewStamp, Stamp, Stored
from punchclock.store.migrations import SQLITE

T = TypeVar("T")
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def path_from_url(url: str) -> Path:
    """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db`` to a path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"not a SQLite URL: {url!r}")
    return Path(url.removeprefix("sqlite:///"))


def _encode(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_FORMAT)


def _decode(text: str) -> datetime:
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)


class DatabaseInUse(PunchclockError):
    """Another punchclock process holds the database in a way that excludes this one."""


def lock_path(database: Path) -> Path:
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def database_lock(database: Path, exclusive: bool) -> Iterator[None]:
    """Shared while serving, exclusive while restoring (punchclock.sqlite_backup); never blocks."""
    database.parent.mkdir(parents=True, exist_ok=True)
    with lock_path(database).open("a") as handle:
        try:
            fcntl.flock(handle, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DatabaseInUse(
                f"{database} is in use by a running punchclock; stop the service first"
                if exclusive
                else f"{database} is being restored; try again when the restore is done"
            ) from None
        yield


def connect(path: Path) -> sqlite3.Connection:
    """A connection configured for durable, concurrent-reader use."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class SQLiteStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._lock = contextlib.ExitStack()  # held while open, so a restore cannot run underneath

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._conn is None:
                raise TransientStorageError("the SQLite database is not open")
            try:
                return work(self._conn)
            except sqlite3.OperationalError as exc:  # locked, disk I/O, read-only file
                raise TransientStorageError(f"SQLite: {exc}") from exc
            except sqlite3.Error as exc:
                raise StorageError(f"SQLite: {exc}") from exc

        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def open(self) -> None:
        def do_open() -> sqlite3.Connection:
            return connect(self.path)

        self._lock.enter_context(database_lock(self.path, exclusive=False))
        self._conn = await asyncio.get_running_loop().run_in_executor(self._thread, do_open)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, conn.close)
        self._thread.shutdown(wait=True)
        self._lock.close()

    async def schema_version(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            ).fetchone()
            if not exists:
                return 0
            return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0])

        return await self._run(read)

    async def migrate(self) -> list[int]:
        def apply(conn: sqlite3.Connection) -> list[int]:
            applied: list[int] = []
            conn.execute("BEGIN IMMEDIATE")  # one migrator at a time
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations "
                    "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                )
                done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
                for migration in SQLITE:
                    if migration.version in done:
                        continue
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                        (migration.version, migration.name, _encode(datetime.now(UTC))),
                    )
                    applied.append(migration.version)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return applied

        return await self._run(apply)

    async def insert(self, stamps: Sequence[NewStamp]) -> dict[str, Stored]:
        def write(conn: sqlite3.Connection) -> dict[str, Stored]:
            keys = list({stamp.key: None for stamp in stamps})
            marks = ",".join("?" * len(keys))  # the only interpolated text: one placeholder per key, all bound
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = {row[0] for row in conn.execute(f"SELECT key FROM stamps WHERE key IN ({marks})", keys)}
                conn.executemany(
                    "INSERT INTO stamps (key, recorded_at) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                    [(stamp.key, _encode(stamp.recorded_at)) for stamp in stamps],
                )
                rows = conn.execute(f"SELECT key, id, recorded_at FROM stamps WHERE key IN ({marks})", keys).fetchall()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return {key: Stored(Stamp(id_, _decode(at)), key not in before) for key, id_, at in rows}

        return await self._run(write)

    async def get(self, stamp_id: int) -> Stamp | None:
        def read(conn: sqlite3.Connection) -> Stamp | None:
            row = conn.execute("SELECT id, recorded_at FROM stamps WHERE id = ?", (stamp_id,)).fetchone()
            return Stamp(row[0], _decode(row[1])) if row else None

        return await self._run(read)

    async def page(self, limit: int, before: int | None) -> list[Stamp]:
        def read(conn: sqlite3.Connection) -> list[Stamp]:
            rows = conn.execute(
                "SELECT id, recorded_at FROM stamps WHERE id < ? ORDER BY id DESC LIMIT ?",
                (MAX_ID if before is None else before, limit),
            ).fetchall()
            return [Stamp(id_, _decode(at)) for id_, at in rows]

        return await self._run(read)

    async def check_writable(self) -> None:
        def check(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO heartbeat (id, beat_at) VALUES (1, ?) "
                "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at",
                (_encode(datetime.now(UTC)),),
            )

        await self._run(check)

    def pool_max(self) -> int:
        return 1

    def pool_stats(self) -> tuple[int, int]:
        return (1 if self._conn is not None else 0, 0)
