"""Run commands as the postgres user: PostgreSQL and pgBackRest refuse root or must own their files."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


class BackupError(RuntimeError):
    """A backup, restore or drill step failed; the message says which and why in one sentence."""


def as_postgres(argv: Sequence[str]) -> list[str]:
    """Prefix a command so it runs as the postgres user when we are root."""
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", *argv]


def make_postgres_dir(path: Path, mode: int = 0o700) -> Path:
    """Create a directory (and missing parents) that the postgres user owns."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)
    return path


def chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)


def describe(argv: Sequence[str]) -> str:
    """A command's name and its non-option words, for error messages: ``pgbackrest restore``."""
    words = [Path(argv[0]).name, *(arg for arg in argv[1:] if not arg.startswith("-"))]
    return " ".join(words[:3])


def run_as_postgres(
    argv: Sequence[str], *, timeout: float = 600, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command as postgres; on failure raise BackupError carrying its stderr."""
    result = subprocess.run(
        as_postgres(argv), capture_output=True, text=True, timeout=timeout, input=stdin, check=False, cwd="/"
    )
    if check and result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-5:]
        raise BackupError(f"{describe(argv)} failed (exit {result.returncode}): " + " | ".join(detail))
    return result
