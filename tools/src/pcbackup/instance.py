"""A PostgreSQL server started from a restored data directory, isolated from the cluster it came from."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pcbackup.errors import BackupError
from punchclock_tools.postgres import CommandFailed, Server, chown_postgres

# Settings a restored copy must not inherit from the cluster (Patroni writes them into postgresql.conf).
FOREIGN_SETTINGS = ("data_directory", "config_file", "hba_file", "ident_file", "external_pid_file")
MARKER = "pcbackup-restore.json"  # written first into every restore's directory: what discard may remove
STALL_SECONDS = 3600.0  # recovery with no sign of progress (log, replay position) for this long is stuck
LAUNCH_SECONDS = 120.0  # pg_ctl itself returns at once (no -w); this bounds only the fork
STARTING_SECONDS = 10.0  # after pg_ctl returns, the postmaster may not have written postmaster.pid yet


@dataclass
class RecoveryWatch:
    """Fails a recovery only when it stops progressing: ``observe`` takes a progress mark (replay position and
    log size); ``stall_seconds`` without a new mark raises. None: never."""

    stall_seconds: float | None
    clock: Callable[[], float] = time.monotonic
    what: str = "recovery"
    last_mark: object = None
    last_progress: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.last_progress = self.clock()

    def observe(self, mark: object) -> None:
        now = self.clock()
        if mark != self.last_mark:
            self.last_mark, self.last_progress = mark, now
        elif self.stall_seconds is not None and now - self.last_progress > self.stall_seconds:
            raise BackupError(f"{self.what} made no progress for {now - self.last_progress:.0f} s (at {mark})")


@dataclass
class Instance(Server):
    """A restored copy: ``base_dir`` holds ``data/``, the Unix socket and ``postgres.log``."""

    def isolate(self) -> None:
        """Own port and socket, archive_mode=off, no synchronous standbys, no upstream, local access."""
        conf = self.data_dir / "postgresql.conf"
        if conf.exists():
            pattern = re.compile(rf"^\s*({'|'.join(FOREIGN_SETTINGS)})\s*=", re.MULTILINE)
            conf.write_text(pattern.sub(r"# disabled by pcbackup restore: \1 =", conf.read_text()))
        hba = self.data_dir / "pg_hba.conf"
        inherited = hba.read_text() if hba.exists() else ""
        # The socket lives in base_dir (mode 0700, owned by postgres), so only postgres and root can reach it.
        hba.write_text("local all all trust\n" + inherited)
        ident = self.data_dir / "pg_ident.conf"
        if not ident.exists():
            ident.write_text("")
        overrides = {
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.base_dir}'",
            "hba_file": f"'{hba}'",
            "ident_file": f"'{ident}'",
            "archive_mode": "off",
            "synchronous_standby_names": "''",
            "primary_conninfo": "''",
            "primary_slot_name": "''",
            "cluster_name": "'punchclock-restore'",
            "hot_standby": "on",
            # A scratch copy must not take the host's memory from the cluster beside it.
            "shared_buffers": "'128MB'",
        }
        auto = self.data_dir / "postgresql.auto.conf"
        # The restore's private spool directory is for the restore only: archive-get runs synchronously.
        auto.write_text(re.sub(r" --spool-path=\S+", "", auto.read_text()))
        with auto.open("a") as handle:
            handle.write("# pcbackup restore: an isolated copy on its own port\n")
            handle.writelines(f"{key} = {value}\n" for key, value in overrides.items())
        for path in (conf, hba, ident, auto):
            if path.exists():
                chown_postgres(path)

    def launch(self) -> None:
        """pg_ctl start without waiting: recovery may take hours, and is watched by ``start`` instead."""
        result = self.pg(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-W", "start",
            timeout=LAUNCH_SECONDS, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BackupError(f"the restored server did not start: {self.log_tail()}")
        self.launched_at = time.monotonic()

    def postmaster_alive(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = pid_file.read_text().split("\n", 1)[0].strip()
        except OSError:
            return False
        return pid.isdigit() and Path(f"/proc/{pid}").exists()

    def recovery_state(self) -> tuple[bool, object]:
        """(recovered and accepting writes, progress mark). Raises when the server has stopped."""
        log_size = self.log_file.stat().st_size if self.log_file.exists() else 0
        try:
            db = self.db("postgres")
            if not db.in_recovery():
                return True, None
            return False, (db.value("SELECT pg_last_wal_replay_lsn()"), log_size)
        except CommandFailed as error:
            launched = getattr(self, "launched_at", 0.0)
            if self.postmaster_alive() or time.monotonic() - launched < STARTING_SECONDS:
                return False, ("starting", log_size)  # not consistent yet: no connections, the log shows progress
            log = self.log_tail()
            if "recovery ended before configured recovery target was reached" in log:
                raise BackupError(
                    "the archive ends before the requested target time (no transaction committed after it "
                    "has been archived): choose an earlier target or restore the latest state"
                ) from error
            raise BackupError(f"the restored server stopped during recovery: {log}") from error

    def start(self, timeout: float = 60, *, stall_seconds: float | None = STALL_SECONDS) -> None:
        """Start and wait until recovery has finished and the server accepts read-write queries, however long
        replay takes, as long as it progresses (``timeout`` is kept for Server's signature and unused)."""
        self.launch()
        watch = RecoveryWatch(stall_seconds)
        while True:
            done, mark = self.recovery_state()
            if done:
                return
            watch.observe(mark)
            time.sleep(0.2)

    def release(self) -> None:
        """Undo the isolation: drop every postgresql.auto.conf setting (ours and pgBackRest's recovery ones) and
        stop cleanly, leaving a data directory a Patroni node can adopt as the new cluster's leader."""
        db = self.db("postgres")
        if db.in_recovery():
            raise BackupError("the copy is still in recovery; wait until it accepts writes before releasing it")
        db.query("ALTER SYSTEM RESET ALL")
        db.query("CHECKPOINT")
        self.stop()
        if (self.data_dir / "postmaster.pid").exists():
            raise BackupError(f"the copy in {self.base_dir} did not stop")
        for leftover in ("recovery.signal", "standby.signal"):
            (self.data_dir / leftover).unlink(missing_ok=True)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base_dir, ignore_errors=True)
