"""Restoring from a real pgBackRest repository: isolated copies, and clear refusals and failures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pcbackup import cli
from pcbackup.errors import BackupError
from pcbackup.restore import restore
from pcbackup.sources import Source
from pcbackup.sql import stamps
from punchclock_tools.postgres import CommandFailed

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_latest_restore_is_an_isolated_running_copy(backed_up: Source, scratch: Path) -> None:
    """Given a backup, when restored to the latest point, then a new server with every stamp runs on its own
    port with archiving off and no synchronous standbys."""
    restored = restore(backed_up.br, scratch / "copy")
    try:
        db = restored.instance.db()
        settings = db.value(
            "SELECT current_setting('archive_mode') || ',' || current_setting('port') || ','"
            " || current_setting('synchronous_standby_names')"
        )
        keys = sorted(row[1] for row in stamps(db).values())
    finally:
        restored.instance.remove()
    assert settings == f"off,{restored.instance.port},"
    assert restored.instance.port != backed_up.nodes[0].port
    assert keys == [f"before-backup-{n}" for n in range(5)]


def test_released_copy_keeps_no_restore_settings(backed_up: Source, scratch: Path) -> None:
    """Given a restored copy, when released for adoption, then it is stopped with an empty postgresql.auto.conf
    and no recovery.signal, ready for a Patroni node to take over."""
    restored = restore(backed_up.br, scratch / "copy")
    try:
        restored.instance.release()
        data = restored.instance.data_dir
        settings = [
            line
            for line in (data / "postgresql.auto.conf").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        ]
        state = (settings, (data / "recovery.signal").exists(), (data / "postmaster.pid").exists())
    finally:
        restored.instance.remove()
    assert state == ([], False, False)


def test_failed_restore_is_kept_for_inspection_and_says_where(backed_up: Source, scratch: Path) -> None:
    """Given a backup label that is not in the repository, then restore fails naming it and the directory it made
    is kept, stopped, with the error saying where; pcbackup discard then removes it."""
    with pytest.raises(CommandFailed, match="20990101-000000F") as raised:
        restore(backed_up.br, scratch / "copy", backup_set="20990101-000000F")
    assert f"kept in {scratch / 'copy'}" in str(raised.value)
    assert (scratch / "copy" / "pcbackup-restore.json").exists()
    assert cli.main(["--config", str(backed_up.br.config), "discard", str(scratch / "copy")]) == 0
    assert not (scratch / "copy").exists()


def test_corrupted_backup_is_detected_and_the_copy_kept(backed_up: Source, scratch: Path) -> None:
    """Given a backup file damaged in the repository, then verify reports it (though pgBackRest exits 0) and the
    restore fails, leaving its stopped copy for inspection."""
    repo = backed_up.br.config.parent / "repo" / "backup" / "punchclock"
    victim = max(
        (p for p in repo.glob("*F/**/*") if p.is_file() and "manifest" not in p.name), key=lambda p: p.stat().st_size
    )
    original = victim.read_bytes()
    middle = len(original) // 2
    victim.write_bytes(
        original[:middle] + bytes(b ^ 0xFF for b in original[middle : middle + 64]) + original[middle + 64 :]
    )
    try:
        verdict = backed_up.br.verify()
        with pytest.raises(CommandFailed, match="restore failed") as raised:
            restore(backed_up.br, scratch / "copy", repo=1)
    finally:
        victim.write_bytes(original)
    assert (verdict.ok, any("invalid" in line for line in verdict.findings)) == (False, True)
    assert "kept in" in str(raised.value)
    assert not (scratch / "copy" / "postmaster.pid").exists()


def test_restore_refuses_the_cluster_own_data_directory(backed_up: Source) -> None:
    """Given the live server's own directory as destination, then restore refuses before touching anything."""
    with pytest.raises(BackupError, match="data directory of the cluster itself"):
        restore(backed_up.br, backed_up.nodes[0].data_dir.parent)


def test_restore_refuses_a_non_empty_directory(backed_up: Source, scratch: Path) -> None:
    """Given a destination that already holds files, then restore refuses and leaves them alone."""
    (scratch / "copy").mkdir()
    (scratch / "copy" / "keep.txt").write_text("mine")
    with pytest.raises(BackupError, match="not empty"):
        restore(backed_up.br, scratch / "copy")
    assert (scratch / "copy" / "keep.txt").read_text() == "mine"


def test_repo2_is_encrypted_with_a_secret_only_postgres_reads(backed_up: Source) -> None:
    """Given the rendered configuration, then repo2 is encrypted, its cipher pass lives in conf.d/secrets.conf
    (mode 0600, never in pgbackrest.conf), and archiving into both repositories works with it."""
    secrets = backed_up.br.config.parent / "conf.d" / "secrets.conf"
    ciphers = {repo["key"]: repo["cipher"] for repo in backed_up.br.info()["repo"]}
    archives = {a["database"]["repo-key"]: a["max"] for a in backed_up.br.info()["archive"]}
    assert (secrets.stat().st_mode & 0o777, ciphers[2]) == (0o600, "aes-256-cbc")
    assert not re.search(r"^repo\d-cipher-pass", backed_up.br.config.read_text(), re.MULTILINE)
    assert archives[1] == archives[2]  # every segment reached both repositories


def test_an_extra_full_backup_does_not_shorten_the_window(backed_up: Source) -> None:
    """Given time-based retention, when two more full backups are taken, then the first full is still kept (with
    count-based retention of two fulls it would have expired, shortening point-in-time recovery)."""
    first = next(b["label"] for b in backed_up.br.backups(1) if b["type"] == "full")
    backed_up.br.backup("full", repo=1)
    backed_up.br.backup("full", repo=1)
    fulls = [b["label"] for b in backed_up.br.backups(1) if b["type"] == "full"]
    assert (first in fulls, len(fulls) >= 3) == (True, True)
