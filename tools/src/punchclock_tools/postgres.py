"""PostgreSQL 15 servers as the project's tooling drives them: commands run as ``postgres``, SQL through psql over
a server's Unix socket, and a throwaway server (initdb into a temporary directory, a free loopback port,
optionally TLS with its own CA) for tests, the benchmark and the restore drill.

PostgreSQL refuses to run as root and pgBackRest must own its files, so when the caller is root every server
command runs as the ``postgres`` user through ``setpriv``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from punchclock_tools.ports import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"
PASSWORD = "punchclock-test"  # noqa: S105 - the throwaway server's application role; it listens on loopback only


class CommandFailed(RuntimeError):
    """A command of the tooling failed; the message says which and why in one sentence."""


def as_postgres(argv: Sequence[str]) -> list[str]:
    """Prefix a command so it runs as the postgres user when we are root."""
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", *argv]


def chown_postgres(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, OS_USER, OS_USER)


def make_postgres_dir(path: Path, mode: int = 0o700) -> Path:
    """Create a directory (and missing parents) that the postgres user owns."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    chown_postgres(path)
    return path


def describe(argv: Sequence[str]) -> str:
    """A command's name and its first non-option words, for error messages: ``pgbackrest restore``."""
    words = [Path(argv[0]).name, *(arg for arg in argv[1:] if not arg.startswith("-"))]
    return " ".join(words[:3])


def run_as_postgres(
    argv: Sequence[str], *, timeout: float = 600, stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command as postgres; with ``check``, raise CommandFailed carrying the end of its stderr."""
    result = subprocess.run(
        as_postgres(argv), capture_output=True, text=True, timeout=timeout, input=stdin, check=False, cwd="/"
    )
    if check and result.returncode != 0:
        detail = (result.stderr.strip() or result.stdout.strip()).splitlines()[-5:]
        raise CommandFailed(f"{describe(argv)} failed (exit {result.returncode}): " + " | ".join(detail))
    return result


@dataclass(frozen=True)
class Database:
    """One database of a server, reached as the superuser over the server's Unix socket."""

    socket_dir: Path
    port: int
    name: str = "punchclock"

    def query(self, sql: str, *, timeout: float = 120) -> str:
        """Run SQL (several statements allowed, each in its own transaction) and return unaligned output."""
        argv = [
            str(PG_BIN / "psql"),
            *("-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", "-d", self.name),
            *("-v", "ON_ERROR_STOP=1", "-XAtq", "-F", "\t", "-f", "-"),
        ]
        return run_as_postgres(argv, stdin=sql, timeout=timeout).stdout.strip()

    def value(self, sql: str) -> str:
        return self.query(sql).splitlines()[0]

    def csv_rows(self, select: str) -> list[list[str]]:
        out = self.query(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", timeout=600)
        return list(csv.reader(io.StringIO(out)))

    def in_recovery(self) -> bool:
        return self.value("SELECT pg_is_in_recovery()") == "t"


@dataclass(frozen=True)
class Tls:
    """A private CA and a server certificate for ``names`` (by default 127.0.0.1 and localhost), made with openssl."""

    ca_cert: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def make(cls, directory: Path, names: Sequence[str] = ("localhost", "127.0.0.1")) -> Tls:
        directory.mkdir(parents=True, exist_ok=True)
        tls = cls(directory / "ca.crt", directory / "server.crt", directory / "server.key")
        ca_key = directory / "ca.key"
        openssl = ["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        subprocess.run(
            [*openssl, "-x509", "-days", "2", "-subj", "/CN=punchclock test CA", "-keyout", ca_key,
             "-out", tls.ca_cert],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        request = directory / "server.csr"
        subprocess.run(
            [*openssl, "-subj", "/CN=localhost", "-keyout", tls.server_key, "-out", request],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        extensions = directory / "server.ext"
        alternatives = ",".join(f"IP:{name}" if name[0].isdigit() else f"DNS:{name}" for name in names)
        extensions.write_text(f"subjectAltName={alternatives}\n")
        subprocess.run(
            ["openssl", "x509", "-req", "-in", request, "-CA", tls.ca_cert, "-CAkey", ca_key,
             "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", tls.server_cert],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        tls.server_key.chmod(0o600)
        for path in (tls.server_cert, tls.server_key):
            chown_postgres(path)
        return tls


@dataclass
class Server:
    """One PostgreSQL server: ``base_dir`` holds ``data/``, the Unix socket and ``postgres.log``."""

    base_dir: Path
    port: int
    settings: Mapping[str, str] = field(default_factory=dict)
    tls: Tls | None = None

    @property
    def data_dir(self) -> Path:
        return self.base_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.base_dir / "postgres.log"

    def db(self, name: str = "punchclock") -> Database:
        return Database(self.base_dir, self.port, name)

    def dsn(self, database: str = "punchclock") -> str:
        """The application role's URL over TCP; with TLS, verified against the server's own CA."""
        url = f"postgresql://punchclock:{PASSWORD}@127.0.0.1:{self.port}/{database}"
        if self.tls:
            url += f"?sslmode=verify-full&sslrootcert={self.tls.ca_cert}"
        return url

    def pg(self, tool: str, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one of PostgreSQL's programs (pg_ctl, pgbench, initdb...) as the server's owner."""
        return run_as_postgres([str(PG_BIN / tool), *args], timeout=timeout, check=check)

    def psql(self, sql: str, database: str = "punchclock") -> str:
        return self.db(database).query(sql)

    def init(self) -> None:
        """initdb with trust on the socket only, scram-sha-256 over TCP (TLS-only when the server has TLS)."""
        make_postgres_dir(self.base_dir, 0o755)
        self.pg("initdb", "-D", str(self.data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8")
        options = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.base_dir}'",
            "fsync": "on",
            "synchronous_commit": "on",
            "max_connections": "200",
            **self.settings,
        }
        host = "host"
        if self.tls:
            certificate = {"ssl_cert_file": f"'{self.tls.server_cert}'", "ssl_key_file": f"'{self.tls.server_key}'"}
            options |= {"ssl": "on", **certificate}
            host = "hostssl"
        with (self.data_dir / "postgresql.conf").open("a") as handle:
            handle.writelines(f"{key} = {value}\n" for key, value in options.items())
        (self.data_dir / "pg_hba.conf").write_text(f"local all all trust\n{host} all all 127.0.0.1/32 scram-sha-256\n")

    def start(self, timeout: float = 60) -> None:
        result = self.pg(
            "pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-w", "-t", str(int(timeout)), "start",
            timeout=timeout + 30, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise CommandFailed(f"PostgreSQL in {self.data_dir} did not start: {self.log_tail()}")

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self.pg("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop", timeout=90, check=False)

    def wait_for_standby(self, name: str | None) -> None:
        """Make every commit wait for the synchronous standby ``name`` (one that never connects holds them all),
        or, with None, for none."""
        names = "''" if name is None else f"'{name}'"
        self.psql(f"ALTER SYSTEM SET synchronous_standby_names = {names}", database="postgres")
        self.psql("SELECT pg_reload_conf()", database="postgres")

    def create_database(self, name: str = "punchclock") -> None:
        self.psql(f"CREATE ROLE punchclock LOGIN PASSWORD '{PASSWORD}'", database="postgres")
        self.psql(f"CREATE DATABASE {name} OWNER punchclock", database="postgres")

    def log_tail(self, lines: int = 6) -> str:
        if not self.log_file.exists():
            return "(no server log)"
        tail = [line for line in self.log_file.read_text(errors="replace").splitlines() if line.strip()]
        return " | ".join(tail[-lines:])


@contextlib.contextmanager
def throwaway(
    settings: Mapping[str, str] | None = None,
    parent: Path | None = None,
    tls: bool = False,
    tls_names: Sequence[str] = ("localhost", "127.0.0.1"),
) -> Iterator[Server]:
    """Start a fresh server with a ``punchclock`` role and database; stop it and delete its files after. With
    ``tls``, TCP connections must use TLS, with a certificate for ``tls_names`` from the server's own CA."""
    base = Path(tempfile.mkdtemp(prefix="punchclock-pg-", dir=parent))
    server = Server(base_dir=base, port=free_port(), settings=dict(settings or {}))
    try:
        if tls:
            make_postgres_dir(base, 0o755)
            server.tls = Tls.make(base / "tls", tls_names)
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
