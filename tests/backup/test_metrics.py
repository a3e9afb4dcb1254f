"""Backup and WAL-archive freshness in node_exporter's textfile format."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pcbackup import metrics
from pcbackup.errors import BackupError
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
    text = metrics.exposition(list(metrics.backup_samples("punchclock", INFO, now=2104, repo=1)))
    assert text.count("# TYPE pgbackrest_backup_last_success_timestamp_seconds gauge") == 1
    assert 'pgbackrest_backup_last_success_timestamp_seconds{repo="1",stanza="punchclock",type="any"} 2004.000' in text


def test_unreachable_repository_reports_down(tmp_path: Path) -> None:
    """Given a configuration pgBackRest cannot use, then the exporter still writes pgbackrest_up 0."""
    found = samples_by_key(metrics.collect(PgBackRest(tmp_path / "missing.conf"), now=5.0))
    assert found[("pgbackrest_up", "")] == 0


def test_textfile_is_replaced_whole(tmp_path: Path) -> None:
    """Given an existing textfile, when rewritten, then it holds only the new text and no temp file remains."""
    metrics.write_textfile(tmp_path, "old 1\n")
    target = metrics.write_textfile(tmp_path, "new 2\n")
    assert (target.read_text(), sorted(p.name for p in tmp_path.iterdir())) == ("new 2\n", ["pgbackrest.prom"])


def test_unreachable_repository_keeps_exporting_its_last_known_ages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given a repository read once, when it becomes unreachable, then the exporter still writes its backup and WAL
    times (marked cached) and ages that keep growing, so the paging age alerts fire instead of going blind."""
    config = tmp_path / "pgbackrest.conf"
    config.write_text("[global]\nrepo1-path=/x\n[punchclock]\n")
    br = PgBackRest(config)
    info = dict(INFO, repo=[{"key": 1, "status": {"code": 0}}])
    monkeypatch.setattr(PgBackRest, "info", lambda self, repo=None: info)
    monkeypatch.setattr(metrics, "newest_wal_time", lambda br, info, repo=1: 2050.0)
    monkeypatch.setattr(metrics, "repo_size", lambda br, repo: 123.0)
    cache = tmp_path / "cache.json"
    metrics.collect(br, now=2104, cache_file=cache)

    def unreachable(self: PgBackRest, repo: int | None = None) -> dict[str, object]:
        raise BackupError("pgbackrest info failed (exit 49): unable to connect to the repository")

    monkeypatch.setattr(PgBackRest, "info", unreachable)
    found = {
        (name, labels.get("type", "")): value for name, labels, value in metrics.collect(br, now=9104, cache_file=cache)
    }
    assert found[("pgbackrest_up", "")] == 0
    assert found[("pgbackrest_repo_up", "")] == 0
    assert found[("pgbackrest_repo_cached", "")] == 1
    assert found[("pgbackrest_backup_last_success_timestamp_seconds", "any")] == 2004
    assert found[("pgbackrest_backup_last_success_age_seconds", "")] == 7100
    assert found[("pgbackrest_wal_archive_last_age_seconds", "")] == 7054


def test_dropped_wal_lines_are_counted(tmp_path: Path) -> None:
    """Given the async archive-push log with two "dropped WAL file" warnings, then both are counted with times."""
    (tmp_path / "log").mkdir()
    config = tmp_path / "pgbackrest.conf"
    config.write_text(f"[global]\nlog-path={tmp_path / 'log'}\narchive-push-queue-max=16GiB\n")
    (tmp_path / "log" / "punchclock-archive-push-async.log").write_text(
        "2026-12-01 10:00:00.000 P00   INFO: archive-push:async command begin 2.45\n"
        "2026-12-01 10:00:01.000 P00   WARN: dropped WAL file '000000010000000000000007' because archive queue"
        " exceeded 16GB\n"
        "2026-12-01 10:00:01.000 P00   WARN: dropped WAL file '000000010000000000000008' because archive queue"
        " exceeded 16GB\n"
    )
    br = PgBackRest(config)
    assert metrics.dropped_wal(br) == [
        ("2026-12-01 10:00:01.000", "000000010000000000000007"),
        ("2026-12-01 10:00:01.000", "000000010000000000000008"),
    ]
    assert metrics.size_bytes(metrics.setting(config, "archive-push-queue-max") or "") == 16 * 1024**3


def test_job_results_keep_the_last_success(tmp_path: Path) -> None:
    """Given a passing drill result, when a failing one is written, then the last success time is kept."""
    labels = {"stanza": "punchclock"}
    metrics.write_result(
        tmp_path,
        "d.prom",
        [
            ("pcbackup_restore_drill_ok", labels, 1),
            ("pcbackup_restore_drill_last_success_timestamp_seconds", labels, 50),
        ],
    )
    metrics.write_result(tmp_path, "d.prom", [("pcbackup_restore_drill_ok", labels, 0)])
    text = (tmp_path / "d.prom").read_text()
    assert 'pcbackup_restore_drill_ok{stanza="punchclock"} 0.000' in text
    assert 'pcbackup_restore_drill_last_success_timestamp_seconds{stanza="punchclock"} 50.000' in text


@pytest.mark.postgres
def test_real_repository_reports_fresh_backup_and_wal(backed_up: Source) -> None:
    """Given a repository with a backup just taken, then both ages are small and the stanza is up."""
    found = samples_by_key(metrics.collect(backed_up.br))
    now = time.time()
    assert found[("pgbackrest_up", "")] == 1
    assert now - found[("pgbackrest_backup_last_success_timestamp_seconds", "any")] < 600
    assert now - found[("pgbackrest_wal_archive_last_timestamp_seconds", "")] < 600


@pytest.mark.postgres
def test_archiver_health_comes_from_postgresql(backed_up: Source) -> None:
    """Given the private server, then the exporter reads pg_stat_archiver and pg_wal through psql: archiving has
    succeeded, nothing waits, and the queue limit is exported beside it."""
    samples = metrics.collect(backed_up.br)
    found = {name: value for name, labels, value in samples if labels.get("pg") in (None, "pg1")}
    assert found["pcbackup_pg_up"] == 1
    assert found["pcbackup_pg_archiver_archived_count"] > 0
    assert (
        found["pcbackup_pg_archiver_last_archived_timestamp_seconds"]
        > found["pcbackup_pg_archiver_last_failed_timestamp_seconds"]
    )
    assert found["pcbackup_pg_wal_bytes"] > 0
    assert found["pgbackrest_archive_push_queue_max_bytes"] == 16 * 1024**3
