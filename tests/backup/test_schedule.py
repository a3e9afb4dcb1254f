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


def test_template_placeholders_are_the_agreed_seven() -> None:
    """Given the template, then it asks for the five the cluster renders plus repo2's path and cipher lines."""
    template = string.Template((REPO_ROOT / "deploy" / "backup" / "pgbackrest.conf.tmpl").read_text())
    assert set(template.get_identifiers()) == {
        "repo_path", "repo2_path", "repo2_cipher", "log_path", "lock_path", "spool_path", "pg_nodes"
    }  # fmt: skip


def test_cluster_rendering_gets_a_second_repository_and_time_retention(tmp_path: Path) -> None:
    """Given the cluster's call (five positional arguments, as punchclock_tools.cluster renders it), then the
    configuration has repo2 beside repo1, both with time-based retention, and no secret in it."""
    text = render(tmp_path / "repo", tmp_path / "log", tmp_path / "lock", tmp_path / "spool", [])
    values = dict(re.findall(r"^([a-z0-9-]+)=(.*)$", text, re.M))
    assert (values["repo2-path"], values["repo1-retention-full-type"], values["repo2-retention-full-type"]) == (
        str(tmp_path / "repo2"),
        "time",
        "time",
    )
    assert "cipher-pass" not in values


def test_s3_sample_is_a_valid_pgbackrest_configuration(scratch: Path) -> None:
    """Given the production S3 sample and its secrets sample in conf.d, then pgBackRest reads two encrypted
    repositories in different buckets and providers, with their keys from the 0600 include file only."""
    sample = scratch / "pgbackrest.conf"
    sample.write_text((REPO_ROOT / "deploy" / "backup" / "pgbackrest-s3.conf.sample").read_text())
    sample.chmod(0o644)
    include = scratch / "conf.d"
    include.mkdir()
    secrets = include / "secrets.conf"
    secrets.write_text((REPO_ROOT / "deploy" / "backup" / "secrets.conf.sample").read_text())
    for path in (include, secrets):
        shutil.chown(path, "postgres", "postgres")
    secrets.chmod(0o600)
    shown = {}
    base = ["pgbackrest", f"--config={sample}", f"--config-include-path={include}", "--stanza=punchclock"]
    for option in (
        "repo-s3-bucket",
        "repo-cipher-type",
        "repo-cipher-pass",
        "repo-retention-full-type",
        "archive-async",
    ):
        result = run_as_postgres([*base, "help", "archive-push" if option == "archive-async" else "backup", option])
        shown[option] = re.findall(r"current: (\S+)", result.stdout)
    assert shown == {  # pgBackRest's help shows repo1's values; a bad option or secret anywhere fails the load
        "repo-s3-bucket": ["example-punchclock-backups"],
        "repo-cipher-type": ["aes-256-cbc"],
        "repo-cipher-pass": ["<redacted>"],
        "repo-retention-full-type": ["time"],
        "archive-async": ["true"],
    }
    values = dict(re.findall(r"^(repo2-[a-z0-9-]+)=(.*)$", sample.read_text(), re.M))
    assert (values["repo2-s3-bucket"], values["repo2-cipher-type"], values["repo2-retention-full-type"]) == (
        "example-punchclock-backups-b2",
        "aes-256-cbc",
        "time",
    )
    assert values["repo2-s3-endpoint"] != "s3.eu-central-1.amazonaws.com"  # another provider
    assert not re.search(r"^repo\d-(cipher-pass|s3-key)", sample.read_text(), re.M)


def test_timers_schedule_each_repository_weekly_full_and_daily_differential() -> None:
    """Given the timers, then each repository gets a weekly full and daily differentials, at different hours (one
    backup at a time per stanza), each on its own backup service."""
    schedule = {
        name: (unit(name)["Timer"]["OnCalendar"], unit(name)["Timer"]["Unit"])
        for name in ("pcbackup-backup-full.timer", "pcbackup-backup-diff.timer",
                     "pcbackup-backup-repo2-full.timer", "pcbackup-backup-repo2-diff.timer")
    }  # fmt: skip
    assert schedule == {
        "pcbackup-backup-full.timer": ("Sun *-*-* 01:15:00", "pcbackup-backup@full.service"),
        "pcbackup-backup-diff.timer": ("Mon..Sat *-*-* 01:15:00", "pcbackup-backup@diff.service"),
        "pcbackup-backup-repo2-full.timer": ("Sat *-*-* 04:15:00", "pcbackup-backup-repo2@full.service"),
        "pcbackup-backup-repo2-diff.timer": ("Sun,Mon..Fri *-*-* 04:15:00", "pcbackup-backup-repo2@diff.service"),
    }
    assert unit("pcbackup-backup-repo2@.service")["Service"]["ExecStart"].endswith("backup --type %i --repo 2")


def test_long_jobs_have_no_unit_timeout_and_verify_and_gap_backups_are_scheduled() -> None:
    """Given the backup, verify and drill units, then none has a start timeout (a long job is never killed), verify
    runs weekly, and a backup follows dropped WAL in both repositories."""
    for name in ("pcbackup-backup@.service", "pcbackup-backup-repo2@.service", "pcbackup-verify.service",
                 "pcbackup-restore-drill.service", "pcbackup-backup-after-gap.service"):  # fmt: skip
        assert (name, unit(name)["Service"]["TimeoutStartSec"]) == (name, "infinity")
    assert unit("pcbackup-verify.timer")["Timer"]["Unit"] == "pcbackup-verify.service"
    gap = (UNITS / "pcbackup-backup-after-gap.service").read_text()
    assert re.findall(r"--repo (\d) --if-wal-dropped", gap) == ["1", "2"]
    assert "--canary" in unit("pcbackup-metrics.service")["Service"]["ExecStart"]


def test_backup_service_runs_as_postgres_on_the_leader_only() -> None:
    """Given the backup service, then it runs as postgres, only where Patroni says primary, with the unit's type."""
    service = unit("pcbackup-backup@.service")["Service"]
    assert service["User"] == "postgres"
    assert "/primary" in service["ExecCondition"]
    assert service["ExecStart"].endswith("backup --type %i --repo 1")


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
