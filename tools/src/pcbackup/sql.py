"""The tables as pcbackup compares them: one normalised row form read through psql."""

from __future__ import annotations

from punchclock_tools.postgres import Database

# A row as pcbackup compares it: id, key and time in one normalised UTC text form.
Row = tuple[int, str, str]


def utc_text(column: str) -> str:
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


STAMP_COLUMNS = f"id, key, {utc_text('recorded_at')}"
CANARY_COLUMNS = f"id, key, {utc_text('written_at')}"


def stamps(db: Database) -> dict[int, Row]:
    """Every row of the stamps table keyed by id."""
    rows = db.csv_rows(f"SELECT {STAMP_COLUMNS} FROM stamps")
    return {int(r[0]): (int(r[0]), r[1], r[2]) for r in rows}


def canary(db: Database) -> dict[int, Row]:
    """Every row of the canary table keyed by id."""
    rows = db.csv_rows(f"SELECT {CANARY_COLUMNS} FROM pcbackup_canary")
    return {int(r[0]): (int(r[0]), r[1], r[2]) for r in rows}


def stamps_digest(db: Database, up_to_id: int) -> tuple[int, str]:
    """(count, order-independent checksum) of the stamps with id <= ``up_to_id``: cheap at 10M rows."""
    row = db.value(
        "SELECT count(*),"
        " coalesce(sum(hashtextextended(id::text || key || extract(epoch FROM recorded_at)::text, 0)), 0)"
        f" FROM stamps WHERE id <= {int(up_to_id)}"
    ).split("\t")
    return int(row[0]), row[1]


def max_stamp_id(db: Database) -> int:
    return int(db.value("SELECT coalesce(max(id), 0) FROM stamps"))
