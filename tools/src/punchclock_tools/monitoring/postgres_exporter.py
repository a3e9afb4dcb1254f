"""Debian's prometheus-postgres-exporter (0.11) beside one PostgreSQL node of the local cluster.

It logs in as ``punchclock_monitor``, a role with ``pg_monitor`` and nothing else (no superuser, no writes), over
loopback TCP (the cluster's ``pg_hba`` allows only same-name peers on the socket). The exporter reads the role's
password from a 0600 file named by ``DATA_SOURCE_PASS_FILE``: it is on no command line and in no environment.
The file lives in the cluster's state directory, so every exporter of that cluster (``make monitoring-up``'s, a
test's) shares one password, and it goes when the cluster is purged.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

from punchclock_tools.cluster import control
from punchclock_tools.cluster.layout import Layout, Node
from punchclock_tools.monitoring import daemon
from punchclock_tools.paths import REPO
from punchclock_tools.ports import free_port

BINARY = "prometheus-postgres-exporter"  # Debian package prometheus-postgres-exporter
ROLE = "punchclock_monitor"
PASSWORD_FILE = "monitoring-role.password"  # noqa: S105 - a file name, not a password
DATABASE = "postgres"
CONNECTION_LIMIT = 5  # one connection per exporter; make monitoring-up's and a test's may run at once
# Replaces the built-in pg_replication_slots query, which fails on every standby (see the file).
QUERIES = REPO / "deploy" / "monitoring" / "postgres-exporter-queries.yml"
HEX = re.compile(r"[0-9a-f]{24,}")


def password_file(layout: Layout) -> Path:
    return layout.root / PASSWORD_FILE


def read_or_create_password(path: Path) -> tuple[str, bool]:
    """The password kept in ``path``, or a new one written there (0600 from creation); whether it is new."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        password = path.read_text().strip()
        if not HEX.fullmatch(password):
            raise ValueError(f"{path} does not hold a generated password; delete it to make a new one") from None
        return password, False
    password = secrets.token_hex(16)
    with os.fdopen(fd, "w") as out:
        out.write(password + "\n")
    return password, True


def role_sql(password: str) -> str:
    """Create the role if missing, then set exactly what it may do: log in and read the statistics views."""
    return f"""DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN CREATE ROLE {ROLE}; END IF;
END$$;
ALTER ROLE {ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  CONNECTION LIMIT {CONNECTION_LIMIT} PASSWORD '{password}';
GRANT pg_monitor TO {ROLE};
"""


def ensure_role(layout: Layout) -> Path:
    """The monitoring role on the leader (replicated to every node) and its password file; returns the file.

    Only a new password or a missing role costs a write (which, under ``synchronous_mode_strict``, needs a
    synchronous standby); a second start on the same cluster reads and reuses both."""
    path = password_file(layout)
    password, new = read_or_create_password(path)  # hex only, so it is safe between the SQL quotes
    exists = control.leader_psql(layout, f"SELECT 1 FROM pg_roles WHERE rolname = '{ROLE}'") == "1"
    if new or not exists:
        control.leader_psql(layout, role_sql(password))
    return path


def environment(node: Node, password: Path) -> dict[str, str]:
    """What the exporter reads: where to connect, as whom, and the file with the password (no ``PG_EXPORTER_*``
    or ``DATA_SOURCE_*`` of the caller leaks in)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATA_SOURCE_URI": f"127.0.0.1:{node.pg_port}/{DATABASE}?sslmode=disable",  # loopback, no TLS configured
        "DATA_SOURCE_USER": ROLE,
        "DATA_SOURCE_PASS_FILE": str(password),
    }


def start(node: Node, password: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The exporter for ``node`` on a free loopback port; returns the process and its ``host:port``."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise FileNotFoundError("prometheus-postgres-exporter is not installed (Debian package of that name)")
    address = f"127.0.0.1:{free_port()}"
    argv = [binary, f"--web.listen-address={address}", f"--extend.query-path={QUERIES}", "--log.level=warn"]
    return daemon.spawn(argv, log, env=environment(node, password)), address
