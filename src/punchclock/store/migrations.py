"""Versioned schema migrations, one list per backend. Append; never edit an applied migration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


# /readyz commits a write to this one-row table, so readiness proves the database takes (and, with a
# synchronous standby, replicates) writes.
_HEARTBEAT = Migration(
    2,
    "create heartbeat",
    "CREATE TABLE heartbeat (id integer PRIMARY KEY CHECK (id = 1), beat_at text NOT NULL)",
)

POSTGRES: tuple[Migration, ...] = (
    Migration(
        1,
        "create stamps",
        """
        CREATE TABLE stamps (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            key         text NOT NULL,
            recorded_at timestamptz NOT NULL,
            CONSTRAINT stamps_key_unique UNIQUE (key),
            CONSTRAINT stamps_key_length CHECK (length(key) BETWEEN 1 AND 255)
        )
        """,
    ),
    _HEARTBEAT,
)

SQLITE: tuple[Migration, ...] = (
    Migration(
        1,
        "create stamps",
        """
        CREATE TABLE stamps (
            id          INTEGER PRIMARY KEY AUTOINCREMENT,
            key         TEXT NOT NULL UNIQUE,
            recorded_at TEXT NOT NULL
        )
        """,
    ),
    _HEARTBEAT,
)

# The schema this version of punchclock needs; serve refuses an older one. Both backends move in step
# (tests/unit/test_migrations.py checks it).
REQUIRED_VERSION = POSTGRES[-1].version
