"""Long jobs: no fixed clock kills a backup, restore, verify or a long replay; verify's report is read properly."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pcbackup import cli
from pcbackup.errors import BackupError
from pcbackup.instance import Instance, RecoveryWatch
from pcbackup.pgbackrest import PgBackRest, parse_verify

CLEAN = """2026-12-01 22:18:42.039 P00   INFO: verify command begin 2.45: --repo=1 --stanza=punchclock
2026-12-01 22:18:42.472 P00   INFO: verify command end: completed successfully (438ms)
"""
DAMAGED = """2026-12-01 22:19:22.588 P00   INFO: verify command begin 2.45: --repo=1 --stanza=punchclock
2026-12-01 22:19:22.756 P02   INFO: invalid checksum '20261201-221920F/pg_data/base/4/2755.zst'
2026-12-01 22:19:22.872 P00   INFO: stanza: punchclock
                                    status: error
                                      backup: 20261201-221920F, status: invalid, total files checked: 1268, total valid files: 1267
                                        checksum invalid: 1
2026-12-01 22:19:22.872 P00   INFO: verify command end: completed successfully (287ms)
"""  # noqa: E501 - pgBackRest 2.45's own report, verbatim


@pytest.fixture
def timeouts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, Any]]:
    """Every subprocess.run's command word and timeout, answering as a pgbackrest that succeeds at once."""
    seen: list[tuple[str, Any]] = []

    def fake_run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        words = [a for a in argv if not a.startswith("-")]
        seen.append((words[-1] if words else "", kwargs.get("timeout")))
        out = '[{"status": {"code": 0}, "backup": [{"label": "x", "type": "full", "timestamp": {"stop": 1}}]}]'
        return subprocess.CompletedProcess(argv, 0, out if "info" in argv else CLEAN, "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    return seen


def test_backup_restore_verify_and_check_have_no_fixed_timeout(timeouts: list[tuple[str, Any]], tmp_path: Path) -> None:
    """Given the long pgbackrest commands, then none is run with a timeout of ours: pgBackRest's own io-timeout
    stops a stalled job, and a 10-hour backup of a large database is never killed half-way."""
    br = PgBackRest(tmp_path / "pgbackrest.conf")
    br.run("backup", "--type=full")
    br.run("restore")
    br.verify()
    br.check()
    assert [t for t in timeouts if t[0] in ("backup", "restore", "verify", "check")] == [
        ("backup", None),
        ("restore", None),
        ("verify", None),
        ("check", None),
    ]


def test_a_timeout_in_a_helper_is_reported_not_raised(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a command that gives no answer in time, then the CLI says so in one line and exits 2 (no traceback)."""

    def hanging(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(argv, kwargs.get("timeout") or 1)

    monkeypatch.setattr(subprocess, "run", hanging)
    monkeypatch.setattr("shutil.which", lambda name: f"/usr/bin/{name}")
    config = tmp_path / "pgbackrest.conf"
    config.write_text("[global]\nrepo1-path=/nowhere\n")
    assert cli.main(["--config", str(config), "info"]) == 2
    assert "gave no answer within" in capsys.readouterr().err


def test_recovery_that_keeps_progressing_is_never_cut_short() -> None:
    """Given a replay that advances every 30 s for two hours, then the watch never gives up on it."""
    now = [0.0]
    watch = RecoveryWatch(stall_seconds=600, clock=lambda: now[0])
    for step in range(240):
        now[0] += 30
        watch.observe(("lsn", step // 2))  # progress every other observation
    assert now[0] == 7200


def test_recovery_that_stalls_fails_after_the_stall_limit() -> None:
    """Given a replay stuck at one position, then the watch fails once the stall limit passes, naming it."""
    now = [0.0]
    watch = RecoveryWatch(stall_seconds=600, clock=lambda: now[0])
    watch.observe("0/3000000")
    now[0] = 599
    watch.observe("0/3000000")
    now[0] = 601
    with pytest.raises(BackupError, match="no progress for 601 s"):
        watch.observe("0/3000000")


def test_instance_start_waits_through_a_two_hour_replay(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Given a restored server whose recovery reports progress for two simulated hours, then start() waits for it
    (the old code gave up after 600 s and deleted the copy)."""
    clock = [0.0]
    monkeypatch.setattr("time.monotonic", lambda: clock[0])
    monkeypatch.setattr("time.sleep", lambda seconds: clock.__setitem__(0, clock[0] + 60))
    instance = Instance(tmp_path, 5999)
    states = iter([(False, ("lsn", n)) for n in range(120)] + [(True, None)])
    monkeypatch.setattr(Instance, "launch", lambda self: None)
    monkeypatch.setattr(Instance, "recovery_state", lambda self: next(states))
    instance.start()
    assert clock[0] >= 7200


def test_verify_report_of_pgbackrest_2_45_is_read_properly() -> None:
    """Given 2.45's reports (exit 0 both times), then a clean one passes and a damaged one fails naming the file."""
    clean, damaged = parse_verify(CLEAN), parse_verify(DAMAGED)
    assert (clean.ok, clean.findings) == (True, [])
    assert damaged.ok is False
    assert any("2755.zst" in line for line in damaged.findings)
    assert any("status: invalid" in line for line in damaged.findings)


def test_verify_report_without_its_end_line_is_not_a_pass() -> None:
    """Given a report cut short (no 'completed successfully'), then it is not taken as clean."""
    assert parse_verify(CLEAN.splitlines()[0]).ok is False
