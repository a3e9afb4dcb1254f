"""A deployment that site.yml made on test hosts: its Patroni members over verified TLS, its leader, the host
holding the floating address, and DSNs into each database node for checking receipts.

    with hosts.running(NAMES) as bed:
        ...  # site.yml applied with this inventory
        deployment = Deployment(bed, deploy_dir, GROUPS, vip=bed.address(100))
        deployment.wait_healthy(300)
        with deployment.dsns(via="web1") as dsns:
            verify(outcome, dsns[deployment.leader()])
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import ssl
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from punchclock_tools.cluster.patroni import get_url, members_healthy, wait
from punchclock_tools.hosts import Testbed

# The role defaults this module reads (deploy/ansible/roles: deployment, patroni and haproxy defaults).
REST_PORT = 8008
POSTGRES_PORT = 5432
DATABASE = "punchclock"
DB_USER = "punchclock"
DB_SECRET = "punchclock-db"  # noqa: S105 - the name of the file holding it
HAPROXY_STATS_PORT = 7000
HAPROXY_STATS_USER = "admin"
HAPROXY_STATS_SECRET = "haproxy-stats"  # noqa: S105 - the name of the file holding it


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
        return get_url(f"https://{self.bed.hosts[node].address}:{REST_PORT}{path}", timeout, context)

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
        url = f"https://{self.bed.hosts[balancer].address}:{HAPROXY_STATS_PORT}/;csv"
        token = base64.b64encode(f"{HAPROXY_STATS_USER}:{self.password(HAPROXY_STATS_SECRET)}".encode()).decode()
        request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
        context = ssl.create_default_context(cafile=str(self.ca_file))
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310 - https built here
            rows = csv.DictReader(io.StringIO(response.read().decode().lstrip("# ")))
            for row in rows:
                if (row["pxname"], row["svname"]) == (backend, server):
                    return row["status"].split()[0]
        return None

    def password(self, secret: str) -> str:
        """A generated password from the controller's secrets (Ansible's password lookup file)."""
        return (self.deploy_dir / "secrets" / secret).read_text().split()[0]

    @contextlib.contextmanager
    def dsns(self, via: str) -> Iterator[dict[str, str]]:
        """The application's DSN on each database node, each through an SSH tunnel from web node ``via`` (the
        address pg_hba admits); TLS verified against the deployment's CA."""
        with contextlib.ExitStack() as stack:
            found: dict[str, str] = {}
            for node in self.db_nodes:
                port = stack.enter_context(self.bed.tunnel(via, self.bed.hosts[node].address, POSTGRES_PORT))
                found[node] = (
                    f"postgresql://{DB_USER}:{self.password(DB_SECRET)}@127.0.0.1:{port}/{DATABASE}"
                    f"?sslmode=verify-ca&sslrootcert={self.ca_file}"
                )
            yield found
