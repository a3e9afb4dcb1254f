"""Restore a backup (latest, or to a point in time) into a new data directory and start it on its own port.

Never over a running cluster: the destination must be new or empty and must not be one of the stanza's
configured data directories. The copy starts with archive_mode=off, so it never pushes a new timeline into
the repository, and with no synchronous standbys, so it accepts writes on its own. Turning it into the new
cluster is a separate, explicit step (docs/backup.md, "We lost the whole cluster").

A restore that fails is stopped and kept where it is, for inspection (its server log says how far recovery
got); ``pcbackup discard`` removes it. Nothing is deleted behind the operator's back, and no clock of ours
interrupts a long replay: ``Instance.start`` waits as long as recovery makes progress.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from pcbackup.errors import BackupError
from pcbackup.instance import MARKER, Instance
from pcbackup.pgbackrest import PgBackRest
from punchclock_tools.ports import free_port
from punchclock_tools.postgres import make_postgres_dir


@dataclass(frozen=True)
class Restored:
    instance: Instance
    restore_seconds: float  # pgbackrest restore: files copied back
    recovery_seconds: float  # server start, WAL replay and promotion until it accepts read-write queries

    @property
    def rto_seconds(self) -> float:
        return self.restore_seconds + self.recovery_seconds


def configured_data_dirs(config: Path) -> set[Path]:
    found = re.findall(r"^\s*pg\d+-path\s*=\s*(.+?)\s*$", config.read_text(), re.MULTILINE)
    return {Path(path).resolve() for path in found}


def check_destination(base_dir: Path, config: Path) -> None:
    data_dir = (base_dir / "data").resolve()
    if data_dir in configured_data_dirs(config) or base_dir.resolve() in configured_data_dirs(config):
        raise BackupError(f"refusing to restore into {data_dir}: it is a data directory of the cluster itself")
    if base_dir.exists() and any(base_dir.iterdir()):
        raise BackupError(f"refusing to restore into {base_dir}: it exists and is not empty")


def restore(
    br: PgBackRest,
    base_dir: Path,
    *,
    target: str | None = None,
    backup_set: str | None = None,
    port: int | None = None,
    repo: int | None = None,
    stall_seconds: float | None = None,
) -> Restored:
    """Restore into ``base_dir/data`` and start it; on failure the copy is stopped and kept, and the error says
    where. ``stall_seconds`` bounds how long recovery may go without progress (default: no bound)."""
    check_destination(base_dir, br.config)
    instance = Instance(make_postgres_dir(base_dir), port or free_port())
    (base_dir / MARKER).write_text(json.dumps({"port": instance.port, "target": target, "set": backup_set}) + "\n")
    # A private spool: restore empties the stanza's spool directory, which the cluster's asynchronous
    # archive-push is using at the same moment on a shared host.
    spool = make_postgres_dir(base_dir / "spool")
    options = [
        f"--pg1-path={instance.data_dir}",
        f"--spool-path={spool}",
        "--archive-mode=off",
        "--log-level-console=warn",
    ]
    if target:
        options += ["--type=time", f"--target={target}", "--target-action=promote"]
    if backup_set:
        options.append(f"--set={backup_set}")
    if repo:
        options.append(f"--repo={repo}")
    started = time.monotonic()
    try:
        make_postgres_dir(instance.data_dir)
        br.run("restore", *options)
        restored = time.monotonic()
        instance.isolate()
        instance.start(stall_seconds=stall_seconds)
    except BaseException as error:
        instance.stop()
        kept = (
            f"the copy is kept in {base_dir} for inspection (server log {instance.log_file}); "
            f"remove it with `pcbackup discard {base_dir}`"
        )
        if isinstance(error, BackupError):
            raise BackupError(f"restore failed: {error}; {kept}") from error
        error.add_note(f"pcbackup restore interrupted: {kept}")
        raise
    return Restored(instance, restored - started, time.monotonic() - restored)
