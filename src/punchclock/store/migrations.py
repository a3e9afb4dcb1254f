"""Versioned schema migrations, one list per backend. Append; never edit an applied migration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


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
)

# The schema this version of punchclock needs; serve refuses an older one.
REQUIRED_VERSION = POSTGRES[-1].version
assert SQLITE[-1].version == REQUIRED_VERSION, "both backends move in step"
