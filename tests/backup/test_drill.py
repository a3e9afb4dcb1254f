"""The quick restore drill, end to end through the command line make restore-drill uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.backup.conftest import pcbackup

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_drill_proves_both_repositories_and_the_oldest_full_row_exact(scratch: Path) -> None:
    """Given a private server archiving into two repositories (repo2 encrypted) with a scheduled chain (full,
    canary heartbeats, diff, incr), when the drill runs, then it verifies both repositories, restores the newest
    backup of each through its chain and the oldest full to a mid-window target, each row-exact on the canary
    table with production stamps identical, reports the RPO as a bound, and records the result for node_exporter."""
    report_file = scratch / "drill.json"
    result = pcbackup(
        "drill", "--standalone", "--count", "5", "--scratch", str(scratch), "--report", str(report_file),
        "--textfile-dir", str(scratch / "textfile"), timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(report_file.read_text())
    assert (report["ok"], report["verify"]) == (True, {"repo1": True, "repo2": True})
    restores = {r["name"]: r for r in report["restores"]}
    assert sorted(restores) == ["newest-repo1", "newest-repo2", "oldest-full"]
    assert (restores["newest-repo1"]["backup_type"], restores["oldest-full"]["backup_type"]) == ("incr", "full")
    assert all(
        (r["ok"], r["missing"], r["after_target"], r["unknown"]) == (True, [], [], []) for r in restores.values()
    )
    assert restores["newest-repo1"]["stamps_match"] is True
    assert 0 < restores["oldest-full"]["canary_rows"] < restores["newest-repo1"]["canary_rows"]
    assert report["rpo_bound_seconds"] >= report["archive_timeout_seconds"]
    assert json.loads(result.stdout) == report
    steps = re.findall(r"^drill: (\w+): ", result.stderr, re.MULTILINE)
    assert steps[:5] == ["chain", "verify", "verify", "writes", "archive"], result.stderr
    assert result.stderr.splitlines()[-1].startswith("restore drill PASS: "), result.stderr
    assert (
        'pcbackup_restore_drill_ok{stanza="punchclock"} 1.000'
        in (scratch / "textfile" / "pcbackup-drill.prom").read_text()
    )


def test_drill_without_a_cluster_says_how_to_get_one(tmp_path: Path) -> None:
    """Given no local cluster and no --config, then the drill stops at once saying which command provides one."""
    result = pcbackup("--state", str(tmp_path / "cluster"), "drill")
    assert result.returncode == 2
    assert "make cluster-up" in result.stderr
    assert "DRILL=standalone" in result.stderr
