"""Schemathesis fuzzes every operation of ``/openapi.json`` on a real ``punchclock serve`` process.

The instance runs with ``PUNCHCLOCK_ENV=production`` on SQLite (no check here involves PostgreSQL). Every
response is checked against the description (status codes, content types, headers, bodies) and must not be
an undocumented 5xx. Every check runs, ``positive_data_acceptance`` among them: the description carries every
bound the service enforces (``Idempotency-Key``'s characters and length, ``before``'s cursor pattern,
``limit``'s range), so a schema-valid request is accepted and only schema-invalid ones answer a 400. The
example budget keeps the run to about half a minute on a busy machine; the seed makes a failure reproducible.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from punchclock_tools.http import wait_until_ready
from punchclock_tools.process import serving_on

MAX_EXAMPLES = 20
SEED = 1


@pytest.mark.slow
def test_no_operation_answers_outside_its_description(tmp_path: Path) -> None:
    """Fuzzed requests to every operation get only described answers, and never an undocumented 5xx."""
    with serving_on(
        f"sqlite:///{tmp_path / 'fuzz.db'}",
        tmp_path / "serve.log",
        PUNCHCLOCK_ENV="production",
        PUNCHCLOCK_ACCESS_LOG="false",
    ) as (url, process):
        wait_until_ready(url, process)
        result = subprocess.run(
            [
                *(sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json"),
                *("--checks", "all"),
                *("--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED)),
                *("--request-timeout", "10", "--no-color"),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            cwd=tmp_path,  # schemathesis writes its reports here
        )
        assert process.poll() is None, (tmp_path / "serve.log").read_text()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
