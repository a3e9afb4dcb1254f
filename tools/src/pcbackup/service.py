"""Run ``punchclock serve`` against a database for the drill, when the punchclock CLI is installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from pcbackup.errors import BackupError
from pcbackup.writers import wait_ready
from punchclock_tools.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def punchclock_cli() -> str | None:
    """The punchclock executable if it offers ``serve`` and ``migrate``, else None."""
    candidates = [
        os.environ.get("PUNCHCLOCK_BIN", ""),
        str(REPO_ROOT / ".venv/bin/punchclock"),
        shutil.which("punchclock") or "",
    ]
    for candidate in filter(None, candidates):
        if not Path(candidate).exists():
            continue
        result = subprocess.run([candidate, "--help"], capture_output=True, text=True, timeout=60, check=False)
        if result.returncode == 0 and "serve" in result.stdout and "migrate" in result.stdout:
            return candidate
    return None


def migrate(cli: str, database_url: str) -> None:
    result = subprocess.run(
        [cli, "migrate"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise BackupError(f"punchclock migrate failed: {result.stderr.strip()[-500:]}")


@contextlib.contextmanager
def serving(cli: str, database_url: str, log_file: Path) -> Iterator[str]:
    """``punchclock serve`` on a free loopback port; yields its base URL and stops it afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "PORT": str(port),
        "PUNCHCLOCK_HOST": "127.0.0.1",
        "PUNCHCLOCK_ACCESS_LOG": "false",
        "PUNCHCLOCK_MIGRATE_ON_START": "false",
    }
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            [cli, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url)
        yield base_url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
