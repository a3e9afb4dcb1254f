"""Fixtures for the backup suite: the pcbackup command and a private server with a pgBackRest stanza."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pcbackup.sources import Source, standalone
from pcbackup.writers import STAMPS_DDL, SqlWriter
from punchclock_tools.paths import REPO

PCBACKUP = Path(sys.executable).with_name("pcbackup")  # the console script beside this interpreter


def pcbackup(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``pcbackup ARGS`` as make does, from the repository root."""
    return subprocess.run(
        [str(PCBACKUP), *args],
        cwd=REPO,
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
