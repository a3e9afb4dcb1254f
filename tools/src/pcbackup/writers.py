"""What the restore drill writes: rows of its own canary table, never production stamps.

``pcbackup_canary`` holds one row per drill write and one per ``pcbackup metrics --canary`` heartbeat (a row a
minute on the leader), so any moment of the retention window can be checked row-exact after a restore: the
rows committed before the target, byte for byte, and none after.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from pcbackup.sql import CANARY_COLUMNS, STAMP_COLUMNS, Row
from punchclock_tools.postgres import Database

STAMPS_DDL = """CREATE TABLE IF NOT EXISTS stamps (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL UNIQUE,
    recorded_at timestamptz NOT NULL)"""

CANARY_DDL = """CREATE TABLE IF NOT EXISTS pcbackup_canary (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL UNIQUE,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp())"""


def normalise(recorded_at: str) -> str:
    """An RFC 3339 timestamp in the drill's one UTC text form (the form sql.STAMP_COLUMNS produces)."""
    moment = datetime.fromisoformat(recorded_at).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqlWriter:
    """INSERT ... RETURNING into the stamps table, one transaction per stamp (tests seed data with it)."""

    def __init__(self, primary: Callable[[], Database]) -> None:
        self.primary = primary

    def write(self, keys: list[str]) -> list[Row]:
        script = "".join(
            f"INSERT INTO stamps (key, recorded_at) VALUES ('{key}', clock_timestamp()) RETURNING {STAMP_COLUMNS};\n"
            for key in keys
        )
        out = self.primary().query(script)
        return [(int(id_), key, at) for id_, key, at in (line.split("\t") for line in out.splitlines())]


class CanaryWriter:
    """INSERT ... RETURNING into pcbackup_canary on the primary, one statement (one transaction) per row."""

    def __init__(self, primary: Callable[[], Database]) -> None:
        self.primary = primary

    def ensure(self) -> None:
        self.primary().query(CANARY_DDL)

    def write(self, keys: list[str]) -> list[Row]:
        script = "".join(
            f"INSERT INTO pcbackup_canary (key) VALUES ('{key}') RETURNING {CANARY_COLUMNS};\n" for key in keys
        )
        out = self.primary().query(script)
        return [(int(id_), key, at) for id_, key, at in (line.split("\t") for line in out.splitlines())]
