"""A deployment that site.yml made on test hosts: its Patroni members over verified TLS, its leader, the host
holding the floating address, DSNs into each database node for checking receipts, and pgBackRest on the
repository host (group pgbackrest_repo): backups, and restores into a scratch directory there, started on a
private port with archiving off.

    with hosts.running(NAMES) as bed:
        ...  # site.yml applied with this inventory
        deployment = Deployment(bed, deploy_dir, GROUPS, vip=bed.address(100))
        deployment.wait_healthy(300)
        with deployment.dsns(via="web1") as dsns:
            verify(outcome, dsns[deployment.leader()])
        copy = deployment.restore_copy("drill")      # the newest backup, to the end of the archive
        with deployment.copy_dsn(copy) as dsn:
            verify(outcome, dsn)
        deployment.discard_copy(copy)
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import shlex
import ssl
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from punchclock_tools import certs
from punchclock_tools.cluster.patroni import get_url, members_healthy, wait
from punchclock_tools.hosts import Testbed

# The role defaults this module reads (deploy/ansible/roles: deployment, patroni and haproxy defaults); the
# roles' ports are in punchclock_tools.certs.
DATABASE = "punchclock"
DB_USER = "punchclock"
DB_SECRET = "punchclock-db"  # noqa: S105 - the name of the file holding it
HAPROXY_STATS_USER = "admin"
HAPROXY_STATS_SECRET = "haproxy-stats"  # noqa: S105 - the name of the file holding it
PUBLIC_NAME = "punchclock.example.internal"  # roles/deployment: public_name of deployment "punchclock"
TLS_DIR = "/etc/punchclock-tls"
# roles/pgbackrest: the stanza (roles/deployment), restores' configuration and directory on the repository host.
STANZA = "punchclock"
RESTORE_CONF = "/etc/pgbackrest/restore.conf"
RESTORE_INCLUDE = "/etc/pgbackrest/conf.d"
RESTORE_ROOT = "/var/lib/pgbackrest-restore"
PG_BIN = "/usr/lib/postgresql/15/bin"
# A restored copy's own settings, after everything it inherited (postgresql.auto.conf is read last): its own
# port, socket and pg_hba, no archiving (it must never push a new timeline into the repository), no synchronous
# standby to wait for, no upstream, small buffers beside whatever else the host runs. hot_standby off: it opens
# only once recovery has ended, and WAL written after a raise of max_connections (or another setting a hot standby
# must match) replays past it; with hot standby on, recovery aborts there ("insufficient parameter settings").
COPY_SETTINGS = """\
port = {port}
listen_addresses = '127.0.0.1'
unix_socket_directories = '{base}'
hba_file = '{base}/pg_hba.conf'
ident_file = '{base}/pg_ident.conf'
archive_mode = 'off'
synchronous_standby_names = ''
primary_conninfo = ''
primary_slot_name = ''
cluster_name = 'punchclock-restore'
shared_buffers = '128MB'
hot_standby = off
"""
# Only postgres on the socket, and the application's role over TLS from the host itself (an SSH tunnel's end).
COPY_HBA = f"local all postgres peer\nhostssl {DATABASE} {DB_USER} 127.0.0.1/32 scram-sha-256\n"


def _start_script(base: str, port: int, timeout: float) -> str:
    """Shell lines that give a restored copy its own settings, start it (pg_ctl waits until it takes connections,
    with hot_standby off once recovery has ended), and wait until it has promoted; a server that stops fails
    either wait with its log's tail."""
    as_postgres = f"runuser -u postgres -- {PG_BIN}"
    in_recovery = f"{as_postgres}/psql -X -h {base} -p {port} -d postgres -Atc 'SELECT pg_is_in_recovery()'"
    return "\n".join(
        [
            f"cat >> {base}/data/postgresql.auto.conf <<'EOF'\n{COPY_SETTINGS.format(port=port, base=base)}EOF",
            f"printf '{COPY_HBA}' > {base}/pg_hba.conf",
            f": > {base}/pg_ident.conf",
            f"chown postgres:postgres {base}/pg_hba.conf {base}/pg_ident.conf",
            f"{as_postgres}/pg_ctl -D {base}/data -l {base}/postgres.log -w -t {int(timeout)} start"
            f" || {{ tail -20 {base}/postgres.log; exit 1; }}",
            f'until [ "$({in_recovery} 2>/dev/null)" = f ]; do',
            f"  {as_postgres}/pg_ctl -D {base}/data status > /dev/null || {{ tail -20 {base}/postgres.log; exit 1; }}",
            "  sleep 0.2",
            "done",
        ]
    )


class RemoteCommandFailed(RuntimeError):
    """A command run on a test host over SSH exited non-zero."""


@dataclass(frozen=True)
class RestoredCopy:
    """A backup restored on ``host`` into ``base``/data and running on 127.0.0.1:``port`` there."""

    host: str
    base: str
    port: int
    restore_seconds: float  # pgbackrest restore: the files copied back
    recovery_seconds: float  # server start, WAL replay and promotion, until it takes writes

    @property
    def rto_seconds(self) -> float:
        return self.restore_seconds + self.recovery_seconds


@dataclass
class Deployment:
    bed: Testbed
    deploy_dir: Path  # PUNCHCLOCK_DEPLOY_DIR of the run: pki/ and secrets/
    groups: dict[str, list[str]]
    vip: str = ""

    @property
    def ca_file(self) -> Path:
        return self.deploy_dir / "pki" / "ca.crt"

    @property
    def db_nodes(self) -> list[str]:
        return self.groups["postgres_cluster"]

    @property
    def public_url(self) -> str:
        """The public endpoint: the floating address (its certificate names it), else the first balancer."""
        return f"https://{self.vip or self.bed.hosts[self.groups['balancers'][0]].address}"

    def _get(self, node: str, path: str, timeout: float = 2.0) -> tuple[int, Any]:
        context = ssl.create_default_context(cafile=str(self.ca_file))
        return get_url(f"https://{self.bed.hosts[node].address}:{certs.PATRONI_REST_PORT}{path}", timeout, context)

    def members(self, skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
        """``GET /cluster`` from the first database node that answers (``skip``: nodes not to ask)."""
        for node in self.db_nodes:
            if node in skip:
                continue
            status, body = self._get(node, "/cluster")
            if status == 200 and isinstance(body, dict):
                return list(body.get("members", []))
        return []

    def leader(self, skip: tuple[str, ...] = ()) -> str | None:
        """The running leader as the members answering see it, never one of ``skip`` (a lost node stays listed
        as leader until its key expires)."""
        for member in self.members(skip):
            if member.get("role") == "leader" and member.get("state") == "running" and member["name"] not in skip:
                return str(member["name"])
        return None

    def healthy(self) -> bool:
        return members_healthy(self.members(), len(self.db_nodes))

    def wait_healthy(self, timeout: float = 300) -> None:
        wait(self.healthy, timeout, "a leader, a synchronous standby and a streaming replica")

    def wait_new_leader(self, old: str, timeout: float = 180) -> str:
        """The leader other than ``old``, asked of the other nodes only."""
        found: str = wait(lambda: self.leader(skip=(old,)), timeout, f"a leader other than {old}")
        return found

    def vip_holder(self) -> str | None:
        """The balancer whose interface carries the floating address now."""
        for name in self.groups["balancers"]:
            proc = self.bed.ssh(name, "ip -4 -o addr show", timeout=20)
            if proc.returncode == 0 and f" {self.vip}/" in proc.stdout:
                return name
        return None

    def backend_state(self, balancer: str, backend: str, server: str) -> str | None:
        """A server's state (UP, DOWN, MAINT...) in a backend of ``balancer``'s HAProxy, from its stats page."""
        url = f"https://{self.bed.hosts[balancer].address}:{certs.HAPROXY_STATS_PORT}/;csv"
        token = base64.b64encode(f"{HAPROXY_STATS_USER}:{self.password(HAPROXY_STATS_SECRET)}".encode()).decode()
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310 - https built here
            rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
            for row in rows:
                if (row["pxname"], row["svname"]) == (backend, server):
                    return row["status"].split()[0]
        return None

    def etcd_members(self, node: str) -> list[dict[str, Any]]:
        """``etcdctl member list`` as ``node`` sees it (its own certificate, over TLS): each member's name (empty
        for one added but not started), peer and client URLs."""
        tls = f"--cacert={TLS_DIR}/ca.crt --cert={TLS_DIR}/host.crt --key={TLS_DIR}/host.key"
        address = self.bed.hosts[node].address
        out = self.remote(
            node,
            f"ETCDCTL_API=3 etcdctl --endpoints=https://{address}:{certs.ETCD_CLIENT_PORT} {tls} member list -w json",
            timeout=60,
        )
        return list(json.loads(out).get("members", []))

    def tls_endpoints(self) -> list[certs.Endpoint]:
        """Every TLS endpoint the roles put on the deployment's hosts."""
        return certs.endpoints(self.groups, PUBLIC_NAME)

    def served_certificates(self) -> dict[certs.Endpoint, certs.Certificate]:
        """What every TLS endpoint serves, verified against the CA and the name it must carry."""
        addresses = {name: host.address for name, host in self.bed.hosts.items()}
        return certs.served_by(self.tls_endpoints(), addresses, self.deploy_dir / "pki")

    def installed_certificate(self, host: str) -> certs.Certificate:
        """The certificate the controller issued to ``host`` (the one its endpoints should serve)."""
        return certs.installed(self.deploy_dir / "pki" / f"{host}.crt")

    def password(self, secret: str) -> str:
        """A generated password from the controller's secrets (Ansible's password lookup file)."""
        return (self.deploy_dir / "secrets" / secret).read_text().split()[0]

    def _app_dsn(self, local_port: int) -> str:
        """The application's DSN to a tunnel's local end; TLS verified against the deployment's CA."""
        return (
            f"postgresql://{DB_USER}:{self.password(DB_SECRET)}@127.0.0.1:{local_port}/{DATABASE}"
            f"?sslmode=verify-ca&sslrootcert={self.ca_file}"
        )

    @contextlib.contextmanager
    def dsns(self, via: str) -> Iterator[dict[str, str]]:
        """The application's DSN on each database node, each through an SSH tunnel from web node ``via`` (the
        address pg_hba admits); TLS verified against the deployment's CA."""
        with contextlib.ExitStack() as stack:
            found: dict[str, str] = {}
            for node in self.db_nodes:
                port = stack.enter_context(self.bed.tunnel(via, self.bed.hosts[node].address, certs.POSTGRES_PORT))
                found[node] = self._app_dsn(port)
            yield found

    @property
    def repo_host(self) -> str:
        return self.groups["pgbackrest_repo"][0]

    def remote(self, host: str, script: str, timeout: float = 600) -> str:
        """Run a shell script on ``host`` as root; its stdout, or RemoteCommandFailed with its output's tail."""
        proc = self.bed.ssh(host, f"set -eu\ncd /\n{script}", timeout=timeout)
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
            raise RemoteCommandFailed(f"on {host} (exit {proc.returncode}): " + " | ".join(tail))
        return proc.stdout

    def pgbackrest(self, *args: str, host: str | None = None, timeout: float = 1800) -> str:
        """pgbackrest as postgres on the repository host (or ``host``), stanza set."""
        argv = ["runuser", "-u", "postgres", "--", "pgbackrest", f"--stanza={STANZA}", *args]
        return self.remote(host or self.repo_host, shlex.join(argv), timeout)

    def backup(self, backup_type: str = "full") -> dict[str, Any]:
        """A backup from the repository host (it finds the primary itself); the newest backup's info entry."""
        self.pgbackrest(f"--type={backup_type}", "--log-level-console=warn", "backup")
        (stanza,) = json.loads(self.pgbackrest("--output=json", "info"))
        return dict(stanza["backup"][-1])

    def restore_copy(
        self, name: str, port: int = 55432, *, backup_set: str | None = None, timeout: float = 1800
    ) -> RestoredCopy:
        """Restore into RESTORE_ROOT/``name`` on the repository host (latest backup, or ``backup_set``, to the
        end of the archive) and start it on 127.0.0.1:``port``; returns once it has promoted and takes writes.
        A failed restore is left in place for inspection; ``discard_copy`` removes it."""
        host, base = self.repo_host, f"{RESTORE_ROOT}/{name}"
        options = [f"--pg1-path={base}/data", *([f"--set={backup_set}"] if backup_set else [])]
        restore = ["runuser", "-u", "postgres", "--", "pgbackrest", f"--config={RESTORE_CONF}",
                   f"--config-include-path={RESTORE_INCLUDE}", f"--stanza={STANZA}", *options, "restore"]  # fmt: skip
        started = time.monotonic()
        self.remote(
            host,
            f"test ! -e {base}\ninstall -d -o postgres -g postgres -m 0700 {base} {base}/data\n{shlex.join(restore)}",
            timeout,
        )
        restored = time.monotonic()
        self.remote(host, _start_script(base, port, timeout), timeout)
        return RestoredCopy(host, base, port, restored - started, time.monotonic() - restored)

    @contextlib.contextmanager
    def copy_dsn(self, copy: RestoredCopy) -> Iterator[str]:
        """The application's DSN to a restored copy, through an SSH tunnel ending on its host."""
        with self.bed.tunnel(copy.host, "127.0.0.1", copy.port) as local:
            yield self._app_dsn(local)

    def discard_copy(self, copy: RestoredCopy) -> None:
        """Stop a restored copy and remove its directory."""
        self.remote(
            copy.host,
            f"runuser -u postgres -- {PG_BIN}/pg_ctl -D {copy.base}/data -m fast stop || true\nrm -rf {copy.base}",
            timeout=300,
        )
