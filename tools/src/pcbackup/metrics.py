"""Backup, WAL-archive and archiver health for Prometheus, in node_exporter's textfile-collector format.

Three sources, so that an unreachable repository never silences the alerts that matter while it lasts:

- ``pgbackrest info`` and ``repo-ls`` per repository (the same for a posix or an S3 repository): backup times,
  sizes, the newest archived WAL. When a repository cannot be read, its last known values are exported again
  from a cache file (``pgbackrest_repo_cached 1``), so backup-age and archive-age keep growing and page; they
  never vanish.
- PostgreSQL itself, through psql on each configured node: ``pg_stat_archiver`` (failed count, last failure and
  last success), the ``.ready`` segments waiting in ``pg_wal`` and pg_wal's size. These need no repository.
- pgBackRest's asynchronous archive-push log: every "dropped WAL file" line is a segment lost from the archive
  because ``archive-push-queue-max`` was exceeded.

Written atomically to ``<dir>/pgbackrest.prom``; alert rules live in deploy/monitoring/rules/backup.yml.
``pcbackup verify`` and ``pcbackup drill`` write their own results beside it (``write_result``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pcbackup.pgbackrest import PgBackRest
from pcbackup.sources import nodes_from_config
from punchclock_tools.postgres import CommandFailed, Database

Sample = tuple[str, dict[str, str], float]

HELP = {
    "pgbackrest_up": ("gauge", "1 if pgbackrest info answered for the stanza"),
    "pgbackrest_stanza_status": ("gauge", "pgBackRest stanza status code (0 ok)"),
    "pgbackrest_repo_up": ("gauge", "1 if this repository answered with status ok"),
    "pgbackrest_repo_status": ("gauge", "pgBackRest status code of this repository (0 ok)"),
    "pgbackrest_repo_cached": ("gauge", "1 if this repository's backup and WAL values are the last known ones"),
    "pgbackrest_repo_size_bytes": ("gauge", "bytes stored in the repository for the stanza (backups and WAL)"),
    "pgbackrest_backup_last_success_timestamp_seconds": ("gauge", "stop time of the newest good backup"),
    "pgbackrest_backup_last_success_age_seconds": ("gauge", "seconds since the newest good backup stopped"),
    "pgbackrest_backup_last_duration_seconds": ("gauge", "duration of the newest good backup of this type"),
    "pgbackrest_backup_last_size_bytes": ("gauge", "database size in the newest good backup of this type"),
    "pgbackrest_backup_count": ("gauge", "backups kept in the repository"),
    "pgbackrest_wal_archive_last_timestamp_seconds": ("gauge", "modification time of the newest archived WAL"),
    "pgbackrest_wal_archive_last_age_seconds": ("gauge", "seconds since the newest WAL reached the archive"),
    "pgbackrest_archive_dropped_wal_total": ("counter", "WAL segments archive-push dropped (queue max exceeded)"),
    "pgbackrest_archive_push_queue_max_bytes": ("gauge", "archive-push-queue-max: pg_wal backlog that drops WAL"),
    "pcbackup_pg_up": ("gauge", "1 if this PostgreSQL node answered"),
    "pcbackup_pg_is_primary": ("gauge", "1 if this node is not in recovery"),
    "pcbackup_pg_archiver_archived_count": ("counter", "pg_stat_archiver.archived_count"),
    "pcbackup_pg_archiver_failed_count": ("counter", "pg_stat_archiver.failed_count"),
    "pcbackup_pg_archiver_last_archived_timestamp_seconds": ("gauge", "pg_stat_archiver.last_archived_time"),
    "pcbackup_pg_archiver_last_failed_timestamp_seconds": ("gauge", "pg_stat_archiver.last_failed_time"),
    "pcbackup_pg_wal_ready_files": ("gauge", "WAL segments waiting for archive_command (.ready files)"),
    "pcbackup_pg_wal_ready_bytes": ("gauge", "bytes of WAL waiting for archive_command"),
    "pcbackup_pg_wal_bytes": ("gauge", "size of pg_wal"),
    "pgbackrest_exporter_last_run_timestamp_seconds": ("gauge", "when this file was written"),
    "pgbackrest_verify_last_run_timestamp_seconds": ("gauge", "when pcbackup verify last ran"),
    "pgbackrest_verify_ok": ("gauge", "1 if the last verify found every file intact"),
    "pgbackrest_verify_findings": ("gauge", "lines of damage the last verify reported"),
    "pcbackup_restore_drill_last_run_timestamp_seconds": ("gauge", "when the restore drill last ended"),
    "pcbackup_restore_drill_ok": ("gauge", "1 if the last restore drill passed"),
    "pcbackup_restore_drill_last_success_timestamp_seconds": ("gauge", "when a restore drill last passed"),
    "pcbackup_restore_drill_rto_seconds": ("gauge", "restore + recovery time of the last drill's slowest restore"),
    "pcbackup_restore_drill_rpo_bound_seconds": ("gauge", "archive_timeout plus the archive backlog's age"),
}

ARCHIVER_SQL = r"""SELECT pg_is_in_recovery(), archived_count, failed_count,
 coalesce(extract(epoch FROM last_archived_time), 0), coalesce(extract(epoch FROM last_failed_time), 0),
 (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name ~ '^[0-9A-F]{24}\.ready$'),
 (SELECT coalesce(sum(size), 0) FROM pg_ls_waldir()),
 (SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size')
 FROM pg_stat_archiver"""
UNITS = {"": 1, "B": 1, "KB": 1024, "KIB": 1024, "MB": 1024**2, "MIB": 1024**2, "GB": 1024**3, "GIB": 1024**3}
UNITS |= {"TB": 1024**4, "TIB": 1024**4}
DROPPED = re.compile(r"^(\S+ \S+) P\d+ +\w+: dropped WAL file '([0-9A-F]{24})'", re.MULTILINE)


def setting(config: Path, key: str) -> str | None:
    """The last ``key=value`` of a pgbackrest.conf (any section), as pgBackRest's global value would be."""
    found = re.findall(rf"^\s*{re.escape(key)}\s*=\s*(.+?)\s*$", config.read_text(), re.MULTILINE)
    return found[-1] if found else None


def size_bytes(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)\s*([A-Za-z]*)", text.strip()).groups()  # type: ignore[union-attr]
    return int(number) * UNITS[unit.upper()]


def backup_samples(stanza: str, info: dict[str, Any], now: float, repo: int | None = None) -> Iterable[Sample]:
    """Per repository (``repo``), or over the whole stanza when None (a single-repository view)."""
    base = {"stanza": stanza} | ({"repo": str(repo)} if repo else {})
    good = [
        b
        for b in info.get("backup", [])
        if not b.get("error") and (repo is None or b.get("database", {}).get("repo-key", 1) == repo)
    ]
    yield "pgbackrest_backup_count", base, len(good)
    if good:
        newest = max(b["timestamp"]["stop"] for b in good)
        yield "pgbackrest_backup_last_success_timestamp_seconds", base | {"type": "any"}, newest
        yield "pgbackrest_backup_last_success_age_seconds", base, max(0.0, now - newest)
    for kind in ("full", "diff", "incr"):
        of_kind = [b for b in good if b["type"] == kind]
        if not of_kind:
            continue
        last = max(of_kind, key=lambda b: b["timestamp"]["stop"])
        labels = base | {"type": kind}
        yield "pgbackrest_backup_last_success_timestamp_seconds", labels, last["timestamp"]["stop"]
        yield "pgbackrest_backup_last_duration_seconds", labels, last["timestamp"]["stop"] - last["timestamp"]["start"]
        yield "pgbackrest_backup_last_size_bytes", labels, last["info"]["size"]


def newest_wal_time(br: PgBackRest, info: dict[str, Any], repo: int = 1) -> float | None:
    """Modification time of the newest WAL segment file in ``repo``'s archive, if any."""
    archives = [a for a in info.get("archive") or [] if a.get("database", {}).get("repo-key", 1) == repo]
    if not archives or not archives[-1].get("max"):
        return None
    newest, archive_id = archives[-1]["max"], archives[-1]["id"]
    listing = br.repo_ls(f"archive/{br.stanza}/{archive_id}/{newest[:16]}", repo=repo)
    times = [entry["time"] for name, entry in listing.items() if name.startswith(newest) and "time" in entry]
    return float(max(times)) if times else None


def repo_size(br: PgBackRest, repo: int) -> float:
    total = 0.0
    for kind in ("archive", "backup"):
        listing = br.repo_ls(f"{kind}/{br.stanza}", repo=repo)
        total += sum(float(entry.get("size", 0)) for entry in listing.values() if entry.get("type") == "file")
    return total


def repo_status(info: dict[str, Any], repo: int) -> int:
    for entry in info.get("repo", []):
        if entry.get("key") == repo:
            return int(entry.get("status", {}).get("code", 99))
    return int(info.get("status", {}).get("code", 99))


def repository_samples(br: PgBackRest, now: float, cache: dict[str, Any]) -> list[Sample]:
    """One ``info`` for every repository; a repository that does not answer repeats its cached values."""
    stanza = {"stanza": br.stanza}
    samples: list[Sample] = []
    try:
        info: dict[str, Any] | None = br.info()
    except CommandFailed:
        info = None
    samples.append(("pgbackrest_up", stanza, 0 if info is None else 1))
    if info is not None:
        samples.append(("pgbackrest_stanza_status", stanza, info.get("status", {}).get("code", 99)))
    for repo in br.repos():
        labels = stanza | {"repo": str(repo)}
        fresh: list[Sample] | None = None
        code = 99 if info is None else repo_status(info, repo)
        if info is not None and code == 0:
            with contextlib.suppress(CommandFailed):
                fresh = list(backup_samples(br.stanza, info, now, repo))
                wal_time = newest_wal_time(br, info, repo)
                if wal_time is not None:
                    fresh.append(("pgbackrest_wal_archive_last_timestamp_seconds", labels, wal_time))
                fresh.append(("pgbackrest_repo_size_bytes", labels, repo_size(br, repo)))
        samples += [("pgbackrest_repo_status", labels, code), ("pgbackrest_repo_up", labels, int(fresh is not None))]
        if fresh is not None:
            cache[str(repo)] = [[name, lab, value] for name, lab, value in fresh if not name.endswith("_age_seconds")]
            kept = fresh
        else:
            kept = [(name, dict(lab), float(value)) for name, lab, value in cache.get(str(repo), [])]
        samples.append(("pgbackrest_repo_cached", labels, int(fresh is None)))
        samples += [s for s in kept if not s[0].endswith("_age_seconds")]
        for name, lab, value in kept:  # ages always from now, so they grow while the repository is away
            if name == "pgbackrest_backup_last_success_timestamp_seconds" and lab.get("type") == "any":
                samples.append(("pgbackrest_backup_last_success_age_seconds", labels, max(0.0, now - value)))
            if name == "pgbackrest_wal_archive_last_timestamp_seconds":
                samples.append(("pgbackrest_wal_archive_last_age_seconds", labels, max(0.0, now - value)))
    return samples


def archiver_samples(br: PgBackRest) -> list[Sample]:
    """pg_stat_archiver and pg_wal of every configured node that answers (no repository involved)."""
    samples: list[Sample] = []
    for index, node in enumerate(nodes_from_config(br.config), start=1):
        labels = {"stanza": br.stanza, "pg": f"pg{index}"}
        if not node.socket_dir.exists():
            continue  # another host's node (a VM lists only its own)
        try:
            row = Database(node.socket_dir, node.port, "postgres").value(ARCHIVER_SQL).split("\t")
        except CommandFailed:
            samples.append(("pcbackup_pg_up", labels, 0))
            continue
        recovery, archived, failed, last_ok, last_failed, ready, wal_bytes, segment = row
        samples += [
            ("pcbackup_pg_up", labels, 1),
            ("pcbackup_pg_is_primary", labels, int(recovery != "t")),
            ("pcbackup_pg_archiver_archived_count", labels, float(archived)),
            ("pcbackup_pg_archiver_failed_count", labels, float(failed)),
            ("pcbackup_pg_archiver_last_archived_timestamp_seconds", labels, float(last_ok)),
            ("pcbackup_pg_archiver_last_failed_timestamp_seconds", labels, float(last_failed)),
            ("pcbackup_pg_wal_ready_files", labels, float(ready)),
            ("pcbackup_pg_wal_ready_bytes", labels, float(ready) * int(segment)),
            ("pcbackup_pg_wal_bytes", labels, float(wal_bytes)),
        ]
    return samples


def dropped_wal(br: PgBackRest) -> list[tuple[str, str]]:
    """(time, segment) of every "dropped WAL file" line in the asynchronous archive-push log."""
    log_path = setting(br.config, "log-path") or "/var/log/pgbackrest"
    log = Path(log_path) / f"{br.stanza}-archive-push-async.log"
    try:
        return DROPPED.findall(log.read_text(errors="replace"))
    except OSError:
        return []


def collect(br: PgBackRest, now: float | None = None, cache_file: Path | None = None) -> list[Sample]:
    now = time.time() if now is None else now
    stanza = {"stanza": br.stanza}
    cache: dict[str, Any] = {}
    if cache_file and cache_file.exists():
        with contextlib.suppress(ValueError, OSError):
            cache = json.loads(cache_file.read_text())
    samples = repository_samples(br, now, cache)
    if cache_file:
        write_atomically(cache_file, json.dumps(cache) + "\n")
    if br.config.exists():
        samples += archiver_samples(br)
        samples.append(("pgbackrest_archive_dropped_wal_total", stanza, len(dropped_wal(br))))
        queue = setting(br.config, "archive-push-queue-max")
        if queue:
            samples.append(("pgbackrest_archive_push_queue_max_bytes", stanza, size_bytes(queue)))
    samples.append(("pgbackrest_exporter_last_run_timestamp_seconds", stanza, now))
    return samples


def exposition(samples: Iterable[Sample]) -> str:
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


def write_atomically(target: Path, text: str) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        out.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)
    return target


def write_textfile(directory: Path, text: str, name: str = "pgbackrest.prom") -> Path:
    """Write atomically (rename), as the textfile collector may read at any moment."""
    return write_atomically(directory / name, text)


def write_result(directory: Path, name: str, samples: Iterable[Sample]) -> Path:
    """A job's own result file (``pgbackrest-verify.prom``, ``pcbackup-drill.prom``), merged with its previous
    values so a failing run keeps the last success time."""
    target = directory / name
    previous: dict[tuple[str, str], str] = {}
    if target.exists():
        for line in target.read_text().splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                previous[(key.split("{", 1)[0], key)] = value
    fresh = list(samples)
    names = {name for name, _, _ in fresh}
    kept = [(name, parse_labels(key), float(value)) for (name, key), value in previous.items() if name not in names]
    return write_atomically(target, exposition([*kept, *fresh]))


def parse_labels(key: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', key))
