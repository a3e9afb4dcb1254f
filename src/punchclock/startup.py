"""Start-up steps shared by ``serve`` and ``migrate``: a bounded wait for the database, the schema check."""

from __future__ import annotations

import asyncio
import time

import structlog

from punchclock.errors import SchemaOutdated, TransientStorageError
from punchclock.store import REQUIRED_VERSION, Store

log = structlog.get_logger("punchclock.startup")


async def wait_for_database(store: Store, bound: float, interval: float = 1.0) -> None:
    """Open ``store``, retrying for at most ``bound`` seconds with one log line per failed attempt."""
    deadline = time.monotonic() + bound
    attempt = 0
    while True:
        attempt += 1
        try:
            await store.open()
        except TransientStorageError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransientStorageError(
                    f"the database was not reachable within {bound:g} s ({attempt} attempts): {exc}"
                ) from exc
            log.warning(
                "database not reachable yet; waiting", attempt=attempt, reason=str(exc), retry_in_s=min(interval, left)
            )
            await asyncio.sleep(min(interval, left))
        else:
            if attempt > 1:
                log.info("database reachable", attempts=attempt)
            return


async def check_schema(store: Store) -> None:
    version = await store.schema_version()
    if version < REQUIRED_VERSION:
        raise SchemaOutdated(
            f"the database schema is at version {version} but punchclock needs {REQUIRED_VERSION}; "
            "run `punchclock migrate` first"
        )
