"""Backup and WAL-archive freshness for Prometheus, in node_exporter's textfile-collector format.

Read from ``pgbackrest info`` and ``repo-ls`` (so it works the same for a posix or an S3 repository) and
written atomically to ``<dir>/pgbackrest.prom``; alert rules live in deploy/monitoring/rules/backup.yml.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pcbackup.pgbackrest import PgBackRest
from punchclock_tools.postgres import CommandFailed

HELP = {
    "pgbackrest_up": ("gauge", "1 if pgbackrest info answered for the stanza"),
    "pgbackrest_stanza_status": ("gauge", "pgBackRest stanza status code (0 ok)"),
    "pgbackrest_backup_last_success_timestamp_seconds": ("gauge", "stop time of the newest good backup"),
    "pgbackrest_backup_last_success_age_seconds": ("gauge", "seconds since the newest good backup stopped"),
    "pgbackrest_backup_last_duration_seconds": ("gauge", "duration of the newest good backup of this type"),
    "pgbackrest_backup_last_size_bytes": ("gauge", "database size in the newest good backup of this type"),
    "pgbackrest_backup_count": ("gauge", "backups kept in the repository"),
    "pgbackrest_wal_archive_last_timestamp_seconds": ("gauge", "modification time of the newest archived WAL"),
    "pgbackrest_wal_archive_last_age_seconds": ("gauge", "seconds since the newest WAL reached the archive"),
    "pgbackrest_exporter_last_run_timestamp_seconds": ("gauge", "when this file was written"),
}


def backup_samples(stanza: str, info: dict[str, Any], now: float) -> Iterable[tuple[str, dict[str, str], float]]:
    yield "pgbackrest_stanza_status", {"stanza": stanza}, info.get("status", {}).get("code", 99)
    good = [b for b in info.get("backup", []) if not b.get("error")]
    yield "pgbackrest_backup_count", {"stanza": stanza}, len(good)
    if good:
        newest = max(b["timestamp"]["stop"] for b in good)
        yield "pgbackrest_backup_last_success_timestamp_seconds", {"stanza": stanza, "type": "any"}, newest
        yield "pgbackrest_backup_last_success_age_seconds", {"stanza": stanza}, max(0.0, now - newest)
    for kind in ("full", "diff", "incr"):
        of_kind = [b for b in good if b["type"] == kind]
        if not of_kind:
            continue
        last = max(of_kind, key=lambda b: b["timestamp"]["stop"])
        labels = {"stanza": stanza, "type": kind}
        yield "pgbackrest_backup_last_success_timestamp_seconds", labels, last["timestamp"]["stop"]
        yield "pgbackrest_backup_last_duration_seconds", labels, last["timestamp"]["stop"] - last["timestamp"]["start"]
        yield "pgbackrest_backup_last_size_bytes", labels, last["info"]["size"]


def newest_wal_time(br: PgBackRest, info: dict[str, Any]) -> float | None:
    """Modification time of the newest WAL segment file in the archive, if any."""
    archives = info.get("archive") or []
    if not archives or not archives[-1].get("max"):
        return None
    newest, archive_id = archives[-1]["max"], archives[-1]["id"]
    listing = br.repo_ls(f"archive/{br.stanza}/{archive_id}/{newest[:16]}")
    times = [entry["time"] for name, entry in listing.items() if name.startswith(newest) and "time" in entry]
    return float(max(times)) if times else None


def collect(br: PgBackRest, now: float | None = None) -> list[tuple[str, dict[str, str], float]]:
    now = time.time() if now is None else now
    stanza = {"stanza": br.stanza}
    samples: list[tuple[str, dict[str, str], float]] = []
    try:
        info = br.info()
        samples += backup_samples(br.stanza, info, now)
        wal_time = newest_wal_time(br, info)
    except CommandFailed:
        samples.append(("pgbackrest_up", stanza, 0))
    else:
        samples.append(("pgbackrest_up", stanza, 1))
        if wal_time is not None:
            samples.append(("pgbackrest_wal_archive_last_timestamp_seconds", stanza, wal_time))
            samples.append(("pgbackrest_wal_archive_last_age_seconds", stanza, max(0.0, now - wal_time)))
    samples.append(("pgbackrest_exporter_last_run_timestamp_seconds", stanza, now))
    return samples


def exposition(samples: Iterable[tuple[str, dict[str, str], float]]) -> str:
    """Prometheus text format: HELP and TYPE once per metric, then its samples."""
    lines: list[str] = []
    seen: set[str] = set()
    for name, labels, value in sorted(samples, key=lambda s: s[0]):
        if name not in seen:
            seen.add(name)
            kind, text = HELP[name]
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        rendered = ",".join(f'{key}="{val}"' for key, val in sorted(labels.items()))
        lines.append(f"{name}{{{rendered}}} {float(value):.3f}")
    return "\n".join(lines) + "\n"


def write_textfile(directory: Path, text: str, name: str = "pgbackrest.prom") -> Path:
    """Write atomically (rename), as the textfile collector may read at any moment."""
    directory.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".pgbackrest-", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    target = directory / name
    os.replace(temporary, target)
    return target
