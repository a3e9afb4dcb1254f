"""A PostgreSQL server started from a restored data directory, isolated from the cluster it came from."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass

from pcbackup.errors import BackupError
from punchclock_tools.postgres import CommandFailed, Server, chown_postgres

# Settings a restored copy must not inherit from the cluster (Patroni writes them into postgresql.conf).
FOREIGN_SETTINGS = ("data_directory", "config_file", "hba_file", "ident_file", "external_pid_file")


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

    def start(self, timeout: float = 600) -> None:
        """Start and wait until recovery has finished and the server accepts read-write queries."""
        try:
            super().start(timeout)
        except CommandFailed as error:
            raise BackupError(f"the restored server did not start: {self.log_tail()}") from error
        deadline = time.monotonic() + timeout
        while self.recovering():
            if time.monotonic() > deadline:
                raise BackupError(f"the restored server is still recovering after {timeout:.0f} s")
            time.sleep(0.1)

    def recovering(self) -> bool:
        try:
            return self.db("postgres").in_recovery()
        except CommandFailed as error:
            log = self.log_tail()
            if "recovery ended before configured recovery target was reached" in log:
                raise BackupError(
                    "the archive ends before the requested target time (no transaction committed after it "
                    "has been archived): choose an earlier target or restore the latest state"
                ) from error
            raise BackupError(f"the restored server stopped during recovery: {log}") from error

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
