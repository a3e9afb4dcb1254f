"""The pgBackRest configuration, the VM schedule (systemd units) and the make targets that drive pcbackup.

The alert rules' promtool tests run with the other rule files in tests/deploy/test_monitoring_rules.py."""

from __future__ import annotations

import configparser
import re
import shutil
import string
import subprocess
from pathlib import Path

import pytest

from pcbackup.config import Node, render
from punchclock_tools.postgres import run_as_postgres

REPO_ROOT = Path(__file__).resolve().parents[2]
UNITS = REPO_ROOT / "deploy" / "backup" / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNITS / name)
    return parser


def test_template_lists_every_node_and_leaves_no_placeholder(tmp_path: Path) -> None:
    """Given three nodes, then the stanza lists pg1..pg3 with path, port and socket and nothing is left open."""
    nodes = [Node(tmp_path / f"pg{n}", 5000 + n, tmp_path / f"run{n}") for n in (1, 2, 3)]
    text = render(tmp_path / "repo", tmp_path / "log", tmp_path / "lock", tmp_path / "spool", nodes)
    assert re.findall(r"^pg(\d)-port=(\d+)$", text, re.M) == [("1", "5001"), ("2", "5002"), ("3", "5003")]
    assert "$" not in text


def test_template_placeholders_are_the_agreed_five() -> None:
    """Given the template, then it asks for exactly repo_path, log_path, lock_path, spool_path and pg_nodes."""
    template = string.Template((REPO_ROOT / "deploy" / "backup" / "pgbackrest.conf.tmpl").read_text())
    assert set(template.get_identifiers()) == {"repo_path", "log_path", "lock_path", "spool_path", "pg_nodes"}


def test_s3_sample_is_a_valid_pgbackrest_configuration(scratch: Path) -> None:
    """Given the production S3 sample, then pgBackRest reads it and sees the bucket and encryption settings."""
    sample = scratch / "pgbackrest.conf"
    sample.write_text((REPO_ROOT / "deploy" / "backup" / "pgbackrest-s3.conf.sample").read_text())
    sample.chmod(0o644)
    env = {
        "PGBACKREST_REPO1_CIPHER_PASS": "test",
        "PGBACKREST_REPO1_S3_KEY": "k",
        "PGBACKREST_REPO1_S3_KEY_SECRET": "s",
    }
    shown = {}
    for option in ("repo-type", "repo-s3-bucket", "repo-cipher-type", "archive-async"):
        result = run_as_postgres(
            [
                "env",
                *(f"{k}={v}" for k, v in env.items()),
                "pgbackrest",
                f"--config={sample}",
                "--stanza=punchclock",
                "help",
                "archive-push",
                option,
            ]
        )
        shown[option] = re.findall(r"current: (\S+)", result.stdout)
    assert shown == {
        "repo-type": ["s3"],
        "repo-s3-bucket": ["example-punchclock-backups"],
        "repo-cipher-type": ["aes-256-cbc"],
        "archive-async": ["true"],
    }


def test_timers_schedule_weekly_full_and_daily_differential() -> None:
    """Given the timers, then full runs on Sunday and diff Monday to Saturday, each on the backup service."""
    full, diff = unit("pcbackup-backup-full.timer"), unit("pcbackup-backup-diff.timer")
    assert (full["Timer"]["OnCalendar"].split()[0], full["Timer"]["Unit"]) == ("Sun", "pcbackup-backup@full.service")
    assert (diff["Timer"]["OnCalendar"].split()[0], diff["Timer"]["Unit"]) == (
        "Mon..Sat",
        "pcbackup-backup@diff.service",
    )


def test_backup_service_runs_as_postgres_on_the_leader_only() -> None:
    """Given the backup service, then it runs as postgres, only where Patroni says primary, with the unit's type."""
    service = unit("pcbackup-backup@.service")["Service"]
    assert service["User"] == "postgres"
    assert "/primary" in service["ExecCondition"]
    assert service["ExecStart"].endswith("backup --type %i")


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_calendar_expressions_are_valid() -> None:
    """Given every timer, then systemd accepts its OnCalendar expression."""
    for timer in sorted(UNITS.glob("*.timer")):
        expression = unit(timer.name)["Timer"]["OnCalendar"]
        result = subprocess.run(
            ["systemd-analyze", "calendar", expression], capture_output=True, text=True, check=False, timeout=30
        )
        assert (timer.name, result.returncode) == (timer.name, 0), result.stderr


def test_make_targets_are_documented() -> None:
    """Given mk/backup.mk, then backup, restore and restore-drill exist and make help describes them."""
    result = subprocess.run(
        ["make", "-s", "help"], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    described = {line.split()[1] for line in result.stdout.splitlines() if line.strip().startswith("make ")}
    assert {"backup", "restore", "restore-drill", "restore-discard", "backup-metrics"} <= described
