"""The pgbackrest commands punchclock uses, run as postgres against one configuration file."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pcbackup.config import STANZA
from pcbackup.errors import BackupError
from punchclock_tools.postgres import CommandFailed, run_as_postgres

BACKUP_TYPES = ("full", "diff", "incr")
# pgbackrest info status codes meaning the stanza does not exist (yet) in the repository.
STATUS_MISSING_STANZA_PATH = 1
STATUS_MISSING_STANZA_DATA = 3


@dataclass(frozen=True)
class PgBackRest:
    """pgbackrest bound to one configuration file and stanza."""

    config: Path
    stanza: str = STANZA

    def run(self, command: str, *options: str, args: tuple[str, ...] = (), timeout: float = 3600) -> str:
        if shutil.which("pgbackrest") is None:
            raise BackupError("pgbackrest is not installed (Debian package: pgbackrest).")
        argv = ["pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}", *options, command, *args]
        return run_as_postgres(argv, timeout=timeout).stdout

    def stanza_create(self) -> None:
        """Create the stanza in the repository; a no-op when it exists and matches the cluster."""
        self.run("stanza-create")

    def ensure_stanza(self) -> None:
        """Create the stanza only when the repository lacks it.

        stanza-create takes the archive lock, which an asynchronous archive-push holds while it works (for a
        while after a failover, for instance), so it is not run when ``info`` already finds the stanza.
        """
        try:
            code = self.info().get("status", {}).get("code")
        except CommandFailed:
            code = None
        if code in (None, STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA):
            self.stanza_create()

    def check(self) -> None:
        """Verify the configuration and force a WAL switch that must reach the archive."""
        self.run("check")

    def backup(self, backup_type: str = "incr") -> dict[str, Any]:
        """Take a backup (pgBackRest makes it full when no full backup exists yet) and describe it."""
        if backup_type not in BACKUP_TYPES:
            raise BackupError(f"backup type must be one of {', '.join(BACKUP_TYPES)}, not {backup_type!r}")
        self.run("backup", f"--type={backup_type}")
        return self.backups()[-1]

    def info(self) -> dict[str, Any]:
        """The stanza's entry of ``pgbackrest info --output=json``."""
        stanzas = json.loads(self.run("info", "--output=json", timeout=120))
        if not stanzas:
            raise BackupError(f"pgbackrest info returned nothing for stanza {self.stanza!r}")
        return dict(stanzas[0])

    def backups(self) -> list[dict[str, Any]]:
        return list(self.info().get("backup", []))

    def repo_ls(self, path: str) -> dict[str, Any]:
        """Files below ``path`` in the repository: name -> {type, size, time}."""
        return dict(json.loads(self.run("repo-ls", "--output=json", "--recurse", args=(path,), timeout=120)))

    def verify(self) -> str:
        """Check every file in the repository against its recorded checksum; raise if any is damaged.

        pgBackRest 2.45 exits 0 even when it finds damage, so the verdict is read from its report.
        """
        out = self.run("verify", "--log-level-console=info")
        if "status: error" in out:
            findings = [
                line.split("INFO: ", 1)[-1].strip()
                for line in out.splitlines()
                if "invalid" in line or "missing" in line or "status: invalid" in line
            ]
            raise BackupError("pgbackrest verify found damage in the repository: " + "; ".join(findings[:8]))
        return "\n".join(line.strip() for line in out.splitlines() if "status:" in line or "backup:" in line)
