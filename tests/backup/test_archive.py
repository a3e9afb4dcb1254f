"""WAL positions and the archive lag behind the RPO figure (no database needed)."""

from __future__ import annotations

from pcbackup.archive import ArchiveLag, parse_lsn, segment_end
from pcbackup.writers import normalise

MB16 = 16 * 1024 * 1024


def test_lsn_text_is_parsed() -> None:
    """Given PostgreSQL's LSN text, then the byte position is high << 32 plus low."""
    assert parse_lsn("1/2000028") == (1 << 32) + 0x2000028


def test_segment_end_follows_the_file_name() -> None:
    """Given segment 000000010000000100000002, then it ends at 1/3000000 with 16 MB segments."""
    assert segment_end("000000010000000100000002", MB16) == parse_lsn("1/3000000")


def test_rpo_is_zero_when_everything_is_archived() -> None:
    """Given no WAL written since the last archived segment, then nothing is at risk."""
    lag = ArchiveLag(
        current_lsn=MB16 * 3,
        archived_lsn=MB16 * 3,
        seconds_since_archived=42.0,
        archive_timeout_seconds=60,
        failed_count=0,
    )
    assert (lag.unarchived_bytes, lag.rpo_seconds) == (0, 0.0)


def test_rpo_is_the_time_since_the_last_archived_segment() -> None:
    """Given WAL written past the archived position, then the writes since the last archive are at risk."""
    lag = ArchiveLag(
        current_lsn=MB16 * 3 + 100,
        archived_lsn=MB16 * 3,
        seconds_since_archived=12.5,
        archive_timeout_seconds=60,
        failed_count=0,
    )
    assert (lag.unarchived_bytes, lag.rpo_seconds) == (100, 12.5)


def test_api_receipt_time_matches_the_database_form() -> None:
    """Given a receipt's RFC 3339 time with an offset, then it normalises to the UTC form the SQL side uses."""
    assert normalise("2026-11-27T11:00:00.5+01:00") == "2026-11-27T10:00:00.500000Z"
