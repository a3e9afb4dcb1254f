"""The stamps table as pcbackup compares it: one normalised row form read through psql."""

from __future__ import annotations

from punchclock_tools.postgres import Database

# A stamp as pcbackup compares it: id, key and recorded_at in one normalised UTC text form.
Row = tuple[int, str, str]
STAMP_COLUMNS = """id, key, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


def stamps(db: Database) -> dict[int, Row]:
    """Every row of the stamps table keyed by id."""
    rows = db.csv_rows(f"SELECT {STAMP_COLUMNS} FROM stamps")
    return {int(r[0]): (int(r[0]), r[1], r[2]) for r in rows}
