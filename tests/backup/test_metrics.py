"""Backup and WAL-archive freshness in node_exporter's textfile format."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pcbackup import metrics
from pcbackup.pgbackrest import PgBackRest
from pcbackup.sources import Source

INFO = {
    "status": {"code": 0, "message": "ok"},
    "archive": [],
    "backup": [
        {"type": "full", "error": False, "timestamp": {"start": 1000, "stop": 1010}, "info": {"size": 55}},
        {"type": "diff", "error": False, "timestamp": {"start": 2000, "stop": 2004}, "info": {"size": 56}},
        {"type": "incr", "error": True, "timestamp": {"start": 3000, "stop": 3001}, "info": {"size": 57}},
    ],
}


def samples_by_key(samples: list[tuple[str, dict[str, str], float]]) -> dict[tuple[str, str], float]:
    return {(name, labels.get("type", "")): value for name, labels, value in samples}


def test_newest_good_backup_sets_the_age() -> None:
    """Given a failed incremental after a good differential, then the age counts from the differential."""
    found = samples_by_key(list(metrics.backup_samples("punchclock", INFO, now=2104)))
    assert found[("pgbackrest_backup_last_success_age_seconds", "")] == 100
    assert found[("pgbackrest_backup_last_success_timestamp_seconds", "full")] == 1010
    assert ("pgbackrest_backup_last_success_timestamp_seconds", "incr") not in found


def test_exposition_is_prometheus_text() -> None:
    """Given samples, then each metric gets HELP and TYPE once and labelled sample lines."""
    text = metrics.exposition(list(metrics.backup_samples("punchclock", INFO, now=2104)))
    assert text.count("# TYPE pgbackrest_backup_last_success_timestamp_seconds gauge") == 1
    assert 'pgbackrest_backup_last_success_timestamp_seconds{stanza="punchclock",type="any"} 2004.000' in text


def test_unreachable_repository_reports_down(tmp_path: Path) -> None:
    """Given a configuration pgBackRest cannot use, then the exporter still writes pgbackrest_up 0."""
    found = samples_by_key(metrics.collect(PgBackRest(tmp_path / "missing.conf"), now=5.0))
    assert found[("pgbackrest_up", "")] == 0


def test_textfile_is_replaced_whole(tmp_path: Path) -> None:
    """Given an existing textfile, when rewritten, then it holds only the new text and no temp file remains."""
    metrics.write_textfile(tmp_path, "old 1\n")
    target = metrics.write_textfile(tmp_path, "new 2\n")
    assert (target.read_text(), sorted(p.name for p in tmp_path.iterdir())) == ("new 2\n", ["pgbackrest.prom"])


@pytest.mark.postgres
def test_real_repository_reports_fresh_backup_and_wal(backed_up: Source) -> None:
    """Given a repository with a backup just taken, then both ages are small and the stanza is up."""
    found = samples_by_key(metrics.collect(backed_up.br))
    now = time.time()
    assert found[("pgbackrest_up", "")] == 1
    assert now - found[("pgbackrest_backup_last_success_timestamp_seconds", "any")] < 600
    assert now - found[("pgbackrest_wal_archive_last_timestamp_seconds", "")] < 600
