"""The monitoring command line without a stack: what make cluster-scale runs after every scale."""

from __future__ import annotations

from pathlib import Path

import pytest

from punchclock_tools.monitoring.__main__ import main


def test_refresh_if_running_without_a_stack_says_so_and_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With no make monitoring-up stack, refresh --if-running prints one line and exits 0; plain refresh fails."""
    assert main(["--dir", str(tmp_path), "refresh", "--if-running"]) == 0
    assert capsys.readouterr().out == "monitoring: not running, no targets to refresh\n"
    assert main(["--dir", str(tmp_path), "refresh"]) == 1
    assert capsys.readouterr().out == "monitoring: not started (make monitoring-up)\n"
