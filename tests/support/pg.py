"""A throwaway PostgreSQL 15 server: initdb into a temporary directory, start on a free loopback port, stop.

Used by the integration tests, the benchmark and the restore drill. PostgreSQL refuses to run as root, so when
the caller is root every server command runs as the ``postgres`` user through ``setpriv``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
PASSWORD = "punchclock-test"  # a loopback-only throwaway server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_postgres(argv: Sequence[str]) -> list[str]:
    """Prefix a command so it runs as the postgres user when we are root."""
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


def chown_to_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")


@dataclass
class PostgresServer:
    """One running PostgreSQL server owned by the caller."""

    base_dir: Path
    port: int
    settings: Mapping[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    def dsn(self, database: str = "punchclock") -> str:
        return f"postgresql://punchclock:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one of PostgreSQL's tools (pg_ctl, psql, pgbench...) as the server's owner."""
        return subprocess.run(
            as_postgres([str(PG_BIN / tool), *args]), check=check, capture_output=True, text=True, timeout=120
        )

    def psql(self, sql: str, database: str = "punchclock") -> str:
        """Run SQL as the superuser over the Unix socket and return unaligned output."""
        result = self.run(
            "psql",
            "-h",
            str(self.base_dir),
            "-p",
            str(self.port),
            "-d",
            database,
            "-v",
            "ON_ERROR_STOP=1",
            "-XAtq",
            "-c",
            sql,
        )
        return result.stdout.strip()

    def init(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        chown_to_postgres(self.base_dir)
        self.run("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        options = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base_dir}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "200",
            **self.settings,
        }
        conf = self.data_dir / "postgresql.conf"
        with conf.open("a") as handle:
            handle.writelines(f"{key} = {value}\n" for key, value in options.items())
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")

    def start(self) -> None:
        self.run("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop", check=False)

    def create_database(self, name: str = "punchclock") -> None:
        self.psql(f"CREATE ROLE punchclock LOGIN PASSWORD '{PASSWORD}'", database="postgres")
        self.psql(f"CREATE DATABASE {name} OWNER punchclock", database="postgres")


@contextlib.contextmanager
def running_postgres(settings: Mapping[str, str] | None = None, parent: Path | None = None) -> Iterator[PostgresServer]:
    """Start a fresh server with a ``punchclock`` role and database; stop it and delete its files after."""
    base = Path(tempfile.mkdtemp(prefix="punchclock-pg-", dir=parent))
    server = PostgresServer(base_dir=base, port=free_port(), settings=dict(settings or {}))
    try:
        server.init()
        server.start()
        server.create_database()
        yield server
    finally:
        server.stop("immediate")
        deadline = time.monotonic() + 10
        while (server.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)
