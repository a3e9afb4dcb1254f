"""Fixtures for the backup suite: pcbackup on the import path and a private server with a pgBackRest stanza."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "deploy" / "backup"))

from pcbackup.sources import Source, standalone  # noqa: E402 - needs the path above
from pcbackup.writers import STAMPS_DDL, SqlWriter  # noqa: E402


def pcbackup(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pcbackup ARGS`` as make does, from the repository root."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "deploy" / "backup")}
    return subprocess.run(
        [sys.executable, "-m", "pcbackup", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def postgres_readable_dir(prefix: str) -> Path:
    """A fresh directory under the system temp dir that the postgres user can traverse (pytest's is 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = postgres_readable_dir("pcbackup-test-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="package")
def backed_up() -> Iterator[Source]:
    """A private PostgreSQL 15 archiving to its own repository, with 5 stamps and one full backup."""
    if not shutil.which("pgbackrest"):
        pytest.fail("pgbackrest is not installed; run `make test`, which installs it")
    work = postgres_readable_dir("pcbackup-repo-")
    try:
        with standalone(work) as source:
            source.primary().query(STAMPS_DDL)
            SqlWriter(source.primary).write([f"before-backup-{n}" for n in range(5)])
            source.br.stanza_create()
            source.br.backup("full")
            yield source
    finally:
        shutil.rmtree(work, ignore_errors=True)
