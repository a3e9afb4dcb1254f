"""The Prometheus rule files are valid and their promtool unit tests pass."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian package prometheus; make test installs it)")
    return path


def test_rule_files_pass_promtool_check(promtool: str) -> None:
    """Every rule file parses, its expressions are valid PromQL and its templates render."""
    assert RULE_FILES
    proc = subprocess.run([promtool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("unit_test", RULE_TESTS, ids=lambda path: path.name)
def test_rule_unit_tests_pass(promtool: str, unit_test: Path) -> None:
    """Given each scrape history of the unit-test file, exactly the expected alerts fire."""
    proc = subprocess.run(
        [promtool, "test", "rules", unit_test.name], cwd=unit_test.parent, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
