"""Storage: one interface, two backends, chosen here and nowhere else."""

from __future__ import annotations

from punchclock.settings import Settings
from punchclock.store.base import NewStamp, Stamp, Store, Stored
from punchclock.store.migrations import REQUIRED_VERSION

__all__ = ["REQUIRED_VERSION", "NewStamp", "Stamp", "Store", "Stored", "open_store"]


def open_store(settings: Settings) -> Store:
    """The backend ``settings.dsn`` names (not yet connected: call ``open()``)."""
    dsn = settings.dsn
    if dsn.startswith("sqlite:"):
        from punchclock.store.sqlite import SQLiteStore, path_from_url

        return SQLiteStore(path_from_url(dsn))
    if dsn.startswith(("postgresql://", "postgres://")):
        from punchclock.store.postgres import PostgresStore

        return PostgresStore(
            dsn,
            pool_size=settings.pool_size,
            connect_timeout=min(5.0, max(settings.ready_timeout_seconds, 1.0)),
            write_timeout=max(settings.failover_budget_seconds, 5.0),
        )
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")
