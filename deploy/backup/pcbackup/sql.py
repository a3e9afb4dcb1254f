"""psql as the postgres superuser over a server's Unix socket: the one way pcbackup talks SQL."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from pcbackup._proc import PG_BIN, run_as_postgres

# A stamp as pcbackup compares it: id, key and recorded_at in one normalised UTC text form.
Row = tuple[int, str, str]
STAMP_COLUMNS = """id, key, to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


@dataclass(frozen=True)
class Database:
    socket_dir: Path
    port: int
    name: str = "punchclock"

    def query(self, sql: str, *, timeout: float = 120) -> str:
        """Run SQL (several statements allowed, each in its own transaction) and return unaligned output."""
        argv = [
            str(PG_BIN / "psql"),
            "-h",
            str(self.socket_dir),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            self.name,
            "-v",
            "ON_ERROR_STOP=1",
            "-XAtq",
            "-F",
            "\t",
            "-f",
            "-",
        ]
        return run_as_postgres(argv, stdin=sql, timeout=timeout).stdout.strip()

    def value(self, sql: str) -> str:
        return self.query(sql).splitlines()[0]

    def csv_rows(self, select: str) -> list[list[str]]:
        out = self.query(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", timeout=600)
        return list(csv.reader(io.StringIO(out)))

    def stamps(self) -> dict[int, Row]:
        """Every row of the stamps table keyed by id."""
        rows = self.csv_rows(f"SELECT {STAMP_COLUMNS} FROM stamps")
        return {int(r[0]): (int(r[0]), r[1], r[2]) for r in rows}

    def in_recovery(self) -> bool:
        return self.value("SELECT pg_is_in_recovery()") == "t"
