"""Counting the rows of ``stamps``, so each run can prove every 2xx left exactly one row."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from punchclock_tools import postgres

RowCount = Callable[[], int]


def postgres_rows(server: postgres.Server) -> RowCount:
    return lambda: int(server.psql("SELECT count(*) FROM stamps"))


def sqlite_rows(path: Path) -> RowCount:
    def count() -> int:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as conn:
            return int(conn.execute("SELECT count(*) FROM stamps").fetchone()[0])

    return count


def settled(count: RowCount, timeout: float = 15.0, interval: float = 0.3) -> int:
    """The row count once two reads ``interval`` apart agree (in-flight commits have landed)."""
    previous = count()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(interval)
        current = count()
        if current == previous:
            return current
        previous = current
    return previous
