"""How far WAL archiving lags behind the primary: the data that losing every node right now would lose."""

from __future__ import annotations

import time
from dataclasses import dataclass

from punchclock_tools.postgres import Database

WAL_SEGMENT_NAME = 24


def parse_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def segment_end(wal_file: str, segment_size: int) -> int:
    """The LSN where a WAL segment named like 000000010000000A000000FF ends."""
    log, seg = int(wal_file[8:16], 16), int(wal_file[16:24], 16)
    return (log << 32) + (seg + 1) * segment_size


@dataclass(frozen=True)
class ArchiveLag:
    """The primary's WAL position against the end of the newest segment in the archive."""

    current_lsn: int
    archived_lsn: int  # where the oldest segment not yet archived begins
    seconds_since_archived: float
    archive_timeout_seconds: int
    failed_count: int
    ready_segments: int = 0  # segments waiting for archive_command: the backlog

    @property
    def unarchived_bytes(self) -> int:
        return max(0, self.current_lsn - self.archived_lsn)

    @property
    def rpo_seconds(self) -> float:
        """Writes made since the last archived segment closed are not in the archive yet."""
        return self.seconds_since_archived if self.unarchived_bytes else 0.0


def measure(primary: Database) -> ArchiveLag:
    """Everything from the oldest segment still waiting for archive_command (or the current one) is at risk."""
    row = primary.value(
        "SELECT pg_current_wal_lsn(), pg_walfile_name(pg_current_wal_lsn()),"
        " coalesce((SELECT min(name) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"
        "           AND length(name) = 30), ''),"
        " (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready' AND length(name) = 30),"
        " coalesce(extract(epoch FROM last_archived_time), 0), current_setting('wal_segment_size'),"
        " extract(epoch FROM current_setting('archive_timeout')::interval), failed_count FROM pg_stat_archiver"
    ).split("\t")
    lsn, current_wal, oldest_ready, ready, archived_at, segment, timeout, failed = row
    size = int(segment.removesuffix("MB")) * 1024 * 1024
    first_unarchived = oldest_ready[:WAL_SEGMENT_NAME] or current_wal
    archived = segment_end(first_unarchived, size) - size
    since = time.time() - float(archived_at) if float(archived_at) else float("inf")
    return ArchiveLag(parse_lsn(lsn), archived, since, int(float(timeout)), int(failed), int(ready))
