"""The pgbackrest commands punchclock uses, run as postgres against one configuration file.

No job is killed by a clock of ours: a backup, restore or verify of a large database takes as long as it takes.
pgBackRest stops a job that stops making progress itself (``io-timeout``, 60 s without a byte moving;
``protocol-timeout`` and ``db-timeout`` for a silent remote or database), which is the progress-based limit.
Only the quick listings (info, repo-ls) have a bound, and it raises ``BackupError`` like any other failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pcbackup.config import INCLUDE_DIR, STANZA
from pcbackup.errors import BackupError
from punchclock_tools.postgres import as_postgres, describe

BACKUP_TYPES = ("full", "diff", "incr")
# pgbackrest info status codes meaning the stanza does not exist (yet) in the repository.
STATUS_MISSING_STANZA_PATH = 1
STATUS_MISSING_STANZA_DATA = 3
LISTING_SECONDS = 300.0  # info and repo-ls only read a listing; anything slower is an unreachable repository


def run_command(argv: list[str], timeout: float | None) -> str:
    """Run ``argv`` as postgres; any failure, a timeout included, is a BackupError naming the command."""
    try:
        result = subprocess.run(
            as_postgres(argv), capture_output=True, text=True, timeout=timeout, check=False, cwd="/"
        )
    except subprocess.TimeoutExpired as error:
        raise BackupError(f"{describe(argv)} gave no answer within {error.timeout:.0f} s") from error
    if result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-5:]
        raise BackupError(f"{describe(argv)} failed (exit {result.returncode}): " + " | ".join(detail))
    return result.stdout


DAMAGE = re.compile(r"status: (?!ok\b)\S+|\binvalid\b|\bmissing\b|\bERROR\b|\bWARN\b")


@dataclass(frozen=True)
class Verification:
    """pgbackrest verify's verdict, read from its report.

    2.45 exits 0 on damage and reports it only at INFO: a clean run prints no ``status:`` line at all, a damaged
    one a ``status: error`` block naming each backup or WAL range and what is wrong (``invalid checksum '...'``,
    ``checksum invalid: 1``, ``missing: 1``...). Clean means: the command ended "completed successfully" and no
    line of the report names damage.
    """

    ok: bool
    findings: list[str] = field(default_factory=list)
    report: str = ""


def parse_verify(out: str) -> Verification:
    lines = [re.sub(r"^\S+ \S+ P\d+ +\w+: ", "", line).strip() for line in out.splitlines()]
    lines = [line for line in lines if line and "command begin" not in line]
    completed = any(line.startswith("verify command end: completed successfully") for line in lines)
    findings = [line for line in lines if DAMAGE.search(line)]
    if not completed:
        findings.append("the report does not end with 'verify command end: completed successfully'")
    return Verification(ok=not findings, findings=findings, report=out)


@dataclass(frozen=True)
class PgBackRest:
    """pgbackrest bound to one configuration file and stanza (and its ``conf.d`` of secrets, if any)."""

    config: Path
    stanza: str = STANZA

    @property
    def include_dir(self) -> Path:
        return self.config.parent / INCLUDE_DIR

    def base_argv(self) -> list[str]:
        argv = ["pgbackrest", f"--config={self.config}"]
        if self.include_dir.is_dir():
            argv.append(f"--config-include-path={self.include_dir}")
        return [*argv, f"--stanza={self.stanza}"]

    def run(self, command: str, *options: str, args: tuple[str, ...] = (), timeout: float | None = None) -> str:
        """Run one command; ``timeout`` None (the default) means no limit but pgBackRest's own."""
        if shutil.which("pgbackrest") is None:
            raise BackupError("pgbackrest is not installed (Debian package: pgbackrest).")
        return run_command([*self.base_argv(), *options, command, *args], timeout)

    def repos(self) -> list[int]:
        """The repository numbers the configuration defines (repoN-path or repoN-type), in order."""
        text = self.config.read_text() if self.config.exists() else ""
        found = {int(n) for n in re.findall(r"^\s*repo(\d+)-(?:path|type)\s*=", text, re.MULTILINE)}
        return sorted(found) or [1]

    def stanza_create(self) -> None:
        """Create the stanza in every repository; a no-op where it exists and matches the cluster."""
        self.run("stanza-create")

    def ensure_stanza(self) -> None:
        """Create the stanza only when a repository lacks it.

        stanza-create takes the archive lock, which an asynchronous archive-push holds while it works (for a
        while after a failover, for instance), so it is not run when ``info`` already finds the stanza.
        """
        try:
            info = self.info()
            codes = [info.get("status", {}).get("code")]
            codes += [repo.get("status", {}).get("code") for repo in info.get("repo", [])]
        except BackupError:
            codes = [None]
        if any(code in (None, STATUS_MISSING_STANZA_PATH, STATUS_MISSING_STANZA_DATA) for code in codes):
            self.stanza_create()

    def check(self) -> None:
        """Verify the configuration and force a WAL switch that must reach every repository."""
        self.run("check")

    def backup(self, backup_type: str = "incr", repo: int = 1) -> dict[str, Any]:
        """Take a backup into ``repo`` (pgBackRest makes it full when none exists there yet) and describe it."""
        if backup_type not in BACKUP_TYPES:
            raise BackupError(f"backup type must be one of {', '.join(BACKUP_TYPES)}, not {backup_type!r}")
        self.run("backup", f"--type={backup_type}", f"--repo={repo}")
        return self.backups(repo)[-1]

    def info(self, repo: int | None = None) -> dict[str, Any]:
        """The stanza's entry of ``pgbackrest info --output=json`` (every repository, or one)."""
        options = ["--output=json", *([f"--repo={repo}"] if repo else [])]
        stanzas = json.loads(self.run("info", *options, timeout=LISTING_SECONDS))
        if not stanzas:
            raise BackupError(f"pgbackrest info returned nothing for stanza {self.stanza!r}")
        return dict(stanzas[0])

    def backups(self, repo: int | None = None) -> list[dict[str, Any]]:
        """Backups oldest first; with ``repo``, only that repository's."""
        found = list(self.info(repo).get("backup", []))
        return sorted(found, key=lambda b: b["timestamp"]["stop"])

    def repo_ls(self, path: str, repo: int = 1) -> dict[str, Any]:
        """Files below ``path`` in the repository: name -> {type, size, time}."""
        out = self.run("repo-ls", "--output=json", "--recurse", f"--repo={repo}", args=(path,), timeout=LISTING_SECONDS)
        return dict(json.loads(out))

    def verify(self, repo: int = 1) -> Verification:
        """Check every file of ``repo`` against its recorded checksum and read the verdict from the report."""
        return parse_verify(self.run("verify", f"--repo={repo}", "--log-level-console=info"))

    def verify_or_raise(self, repo: int = 1) -> str:
        verdict = self.verify(repo)
        if not verdict.ok:
            shown = "; ".join(verdict.findings[:8]) or "no status line in its report"
            raise BackupError(f"pgbackrest verify found damage in repo{repo}: {shown}")
        return "\n".join(line.strip() for line in verdict.report.splitlines() if "status:" in line or "backup:" in line)
