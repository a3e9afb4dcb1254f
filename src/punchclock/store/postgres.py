"""PostgreSQL backend on asyncpg.

asyncpg won over psycopg 3 because it is the fastest asyncio driver measured here, and it has what failover
needs: multi-host DSNs with ``target_session_attrs=read-write`` (or a single HAProxy address), a pool, and
clear connection-loss errors.

Two rules keep a ``201`` honest when a synchronous standby is configured:

- A write is never cancelled. A cancel (client-side or ``statement_timeout``) that arrives while a commit
  waits for the standby makes PostgreSQL report success for a row that is only on the primary. A write
  that takes too long, or whose caller is cancelled, has its connection closed instead: the outcome is
  unknown and the caller retries with the same keys. Sessions run with ``statement_timeout = 0``.
- A row found already stored (a retry, or a replayed Idempotency-Key) is confirmed before it is returned:
  its commit may be visible on the primary without the standby having it (a backend killed while waiting
  for the standby). ``SELECT ... FOR UPDATE`` on those rows writes WAL, so its own commit waits until the
  standby has everything up to it, the earlier commit included.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from punchclock.errors import StorageError, TransientStorageError
from punchclock.settings import redact
from punchclock.store.base import MAX_ID, NewStamp, Stamp, Stored
from punchclock.store.migrations import POSTGRES

# SQLSTATE classes/codes that mean "not now, try again": connection exceptions (08), operator intervention
# such as admin shutdown or cancel (57), read-only transaction (25006, a demoted primary), serialization
# failure and deadlock (40001, 40P01), insufficient resources such as disk full (53).
_TRANSIENT_PREFIXES = ("08", "57", "25006", "40001", "40P01", "53")

# Keys that already exist (retries, replays) are skipped here and read back by _BY_KEYS afterwards; a CTE that
# also returned them in this statement cost PostgreSQL ~60 % more time per batch.
_INSERT = """
INSERT INTO stamps (key, recorded_at) SELECT * FROM unnest($1::text[], $2::timestamptz[])
ON CONFLICT (key) DO NOTHING
RETURNING id, key, recorded_at, true AS created
"""

_BY_KEYS = "SELECT id, key, recorded_at, false AS created FROM stamps WHERE key = ANY($1::text[])"
_CONFIRM = "SELECT 1 FROM stamps WHERE key = ANY($1::text[]) FOR UPDATE"
# The heartbeat waits at most a second for its row: while a commit of it waits for a synchronous standby that
# is gone, that backend keeps the row locked, and later checks fail fast instead of queueing behind it (each
# one a backend held until the standby is back). set_config(..., true) lasts for this statement's
# transaction only and is read when the row lock is requested, after the CTE has run; one statement keeps the
# write uncancellable (see _write).
_HEARTBEAT = (
    "WITH bounded AS (SELECT set_config('lock_timeout', '1s', true)) "
    "INSERT INTO heartbeat (id, beat_at) SELECT 1, now()::text FROM bounded "
    "ON CONFLICT (id) DO UPDATE SET beat_at = excluded.beat_at"
)
# Session settings of every connection: commits wait for the synchronous standby whatever a role or database
# default says (``local`` there would void the promise of a 201 silently); no statement is ever cancelled by a
# timeout (see above); a backend whose client went away notices within seconds while it runs a statement.
SESSION_SETTINGS = {
    "application_name": "punchclock",
    "synchronous_commit": "on",
    "statement_timeout": "0",
    "client_connection_check_interval": "2s",
}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.DataError):  # a bad argument: retrying cannot help
        return False
    if isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError)):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return str(getattr(exc, "sqlstate", "")).startswith(_TRANSIENT_PREFIXES)
    return False


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = f"{type(exc).__name__}: {exc}".strip()
        if is_transient(exc):
            raise TransientStorageError(reason) from exc
        raise StorageError(reason) from exc


def _stored(row: asyncpg.Record) -> Stored:
    return Stored(Stamp(row["id"], row["recorded_at"]), row["created"])


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Released connections go back to the pool as they are. punchclock sets no session state, holds no
    session advisory locks, cursors or LISTENs, so asyncpg's default reset query (one more round trip per
    batch) has nothing to undo."""


class PostgresStore:
    def __init__(self, dsn: str, pool_size: int, connect_timeout: float, write_timeout: float) -> None:
        self._dsn = dsn
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._read_timeout = connect_timeout
        self._write_timeout = write_timeout
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return f"PostgresStore({redact(self._dsn)!r})"

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise TransientStorageError("the PostgreSQL pool is not open")
        return self._pool

    async def open(self) -> None:
        with _translated():
            self._pool = await asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=self._pool_size,
                timeout=self._connect_timeout,
                max_inactive_connection_lifetime=60,
                reset=_keep_session,
                server_settings=SESSION_SETTINGS,
            )

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pool.close(), timeout=5)
            pool.terminate()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[PoolConnectionProxy]:
        """A pooled connection; one that failed transiently is closed rather than returned to the pool."""
        with _translated():
            conn = await self.pool.acquire(timeout=self._connect_timeout)
        try:
            with _translated():
                yield conn
        except TransientStorageError:
            with contextlib.suppress(asyncpg.InterfaceError):  # already detached when the connection died
                conn.terminate()
            raise
        finally:
            await self.pool.release(conn)

    async def _write(self, conn: PoolConnectionProxy, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run a write that is never cancelled (see the module docstring): on timeout or cancellation of
        the caller, the connection is closed instead."""
        task = asyncio.ensure_future(conn.fetch(query, *args))
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._write_timeout)
        except (asyncio.CancelledError, TimeoutError):
            conn.terminate()
            raise

    async def schema_version(self) -> int:
        async with self._connection() as conn:
            exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if not exists:
                return 0
            return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    async def migrate(self) -> list[int]:
        applied: list[int] = []
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('punchclock.migrate'))")
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
            for migration in POSTGRES:
                if migration.version not in done:
                    await conn.execute(migration.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                        migration.version,
                        migration.name,
                    )
                    applied.append(migration.version)
        return applied

    async def insert(self, stamps: Sequence[NewStamp]) -> dict[str, Stored]:
        keys = [stamp.key for stamp in stamps]
        async with self._connection() as conn:
            rows = await self._write(conn, _INSERT, keys, [stamp.recorded_at for stamp in stamps])
            found = {row["key"]: _stored(row) for row in rows}
            missing = [key for key in dict.fromkeys(keys) if key not in found]
            if missing:  # already recorded: a retry or replay, or a concurrent commit of the same key
                found.update({row["key"]: _stored(row) for row in await conn.fetch(_BY_KEYS, missing)})
            existing = [key for key, stored in found.items() if not stored.created]
            if existing:
                await self._write(conn, _CONFIRM, existing)
        if len(found) != len(set(keys)):
            raise StorageError("insert returned fewer stamps than it was given")
        return found

    async def get(self, stamp_id: int) -> Stamp | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                "SELECT id, recorded_at FROM stamps WHERE id = $1", stamp_id, timeout=self._read_timeout
            )
        return Stamp(row["id"], row["recorded_at"]) if row else None

    async def page(self, limit: int, before: int | None) -> list[Stamp]:
        async with self._connection() as conn:
            rows = await conn.fetch(
                "SELECT id, recorded_at FROM stamps WHERE id < $1 ORDER BY id DESC LIMIT $2",
                MAX_ID if before is None else before,
                limit,
                timeout=self._read_timeout,
            )
        return [Stamp(row["id"], row["recorded_at"]) for row in rows]

    async def check_writable(self) -> None:
        """Commit a heartbeat: a replica refuses it, and a missing synchronous standby holds it."""
        async with self._connection() as conn:
            await self._write(conn, _HEARTBEAT)

    def pool_max(self) -> int:
        return self._pool_size

    def pool_stats(self) -> tuple[int, int]:
        if self._pool is None:
            return (0, 0)
        size = self._pool.get_size()
        return (size, size - self._pool.get_idle_size())
