"""Ways the restore drill writes stamps, each returning the receipts the writer acknowledged.

``ApiWriter`` goes through punchclock's HTTP API (``POST /app`` with an Idempotency-Key, retried with the same
key until acknowledged); ``SqlWriter`` inserts directly, for databases no punchclock service fronts.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime

from pcbackup.errors import BackupError
from pcbackup.sql import STAMP_COLUMNS, Row
from punchclock_tools.postgres import Database

STAMPS_DDL = """CREATE TABLE IF NOT EXISTS stamps (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL UNIQUE,
    recorded_at timestamptz NOT NULL)"""


def normalise(recorded_at: str) -> str:
    """An RFC 3339 timestamp in the drill's one UTC text form (the form sql.STAMP_COLUMNS produces)."""
    moment = datetime.fromisoformat(recorded_at).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqlWriter:
    """INSERT ... RETURNING on the primary, one statement (one transaction) per stamp."""

    def __init__(self, primary: Callable[[], Database]) -> None:
        self.primary = primary

    def write(self, keys: list[str]) -> list[Row]:
        script = "".join(
            f"INSERT INTO stamps (key, recorded_at) VALUES ('{key}', clock_timestamp()) RETURNING {STAMP_COLUMNS};\n"
            for key in keys
        )
        out = self.primary().query(script)
        return [(int(id_), key, at) for id_, key, at in (line.split("\t") for line in out.splitlines())]


class ApiWriter:
    """POST /app on a running punchclock service; a failed attempt is retried with the same key."""

    def __init__(self, base_url: str, attempt_seconds: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempt_seconds = attempt_seconds

    def post(self, key: str) -> Row:
        deadline = time.monotonic() + self.attempt_seconds
        request = urllib.request.Request(  # noqa: S310 - the drill's own http:// URL
            f"{self.base_url}/app", method="POST", data=b"", headers={"Idempotency-Key": key}
        )
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our own URL
                    body = json.loads(response.read())
                return int(body["id"]), key, normalise(body["recorded_at"])
            except (urllib.error.URLError, OSError) as error:
                if time.monotonic() > deadline:
                    raise BackupError(f"POST /app for {key} was not acknowledged: {error}") from error
                time.sleep(0.2)

    def write(self, keys: list[str]) -> list[Row]:
        return [self.post(key) for key in keys]


def wait_ready(base_url: str, timeout: float = 60) -> None:
    """Wait until GET /readyz answers 200."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/readyz", timeout=5) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise BackupError(f"punchclock at {base_url} did not become ready within {timeout:.0f} s")
        time.sleep(0.2)
