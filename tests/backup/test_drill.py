"""The quick restore drill, end to end through the command line make restore-drill uses."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.backup.conftest import pcbackup

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_quick_drill_restores_exactly_the_stamps_before_the_target(scratch: Path) -> None:
    """Given a private server archiving to pgBackRest, when the drill writes 10 stamps, notes the target and writes
    10 more, then the point-in-time copy holds exactly the first 10, the drill reports RPO and RTO, stdout is
    the JSON report alone, and stderr had one line per step, in order, then the verdict."""
    report_file = scratch / "drill.json"
    result = pcbackup(
        "drill", "--standalone", "--count", "10", "--scratch", str(scratch), "--report", str(report_file), timeout=240
    )
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(report_file.read_text())
    assert (report["ok"], report["missing"], report["restored_after_target"], report["unknown"]) == (True, [], [], [])
    assert (report["stamps_before_target"], report["rows_restored"]) == (10, 10)
    assert report["rto_seconds"] > 0
    assert report["rpo_seconds"] >= 0
    assert json.loads(result.stdout) == report
    steps = re.findall(r"^drill: (\w+): ", result.stderr, re.MULTILINE)
    assert steps == ["backup", "writes", "target", "writes", "archive", "restore", "compare"], result.stderr
    assert re.search(r"^drill: compare: 10 rows, 0 missing, 0 extra ", result.stderr, re.MULTILINE), result.stderr
    assert result.stderr.splitlines()[-1].startswith("restore drill PASS: "), result.stderr


def test_drill_without_a_cluster_says_how_to_get_one(tmp_path: Path) -> None:
    """Given no local cluster and no --config, then the drill stops at once saying which command provides one."""
    result = pcbackup("--state", str(tmp_path / "cluster"), "drill")
    assert result.returncode == 2
    assert "make cluster-up" in result.stderr
    assert "DRILL=standalone" in result.stderr
