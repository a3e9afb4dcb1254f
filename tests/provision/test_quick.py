"""The quick form of the provisioning test (make test): two bare Debian 12 hosts taken to a serving cluster by
site.yml, a second run that changes nothing, and a stamp over HTTPS verified against the deployment's CA; then
rotate-certs.yml re-issues every certificate and each TLS endpoint serves the new one.

node1: etcd, Patroni/PostgreSQL. node2: Patroni/PostgreSQL (the synchronous standby strict mode needs),
HAProxy (database routing and the public endpoint) and punchclock.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from punchclock_tools import certs, hosts
from punchclock_tools.provisioned import Deployment
from tests.provision.conftest import Run, head_commit, playbook, require_podman_hosts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

GROUPS = {
    "etcd_cluster": ["node1"],
    "postgres_cluster": ["node1", "node2"],
    "web": ["node2"],
    "balancers": ["node2"],
    "pgbackrest_repo": ["node1"],
}


PUBLIC_NAME = "punchclock.example.internal"
# Every TLS endpoint of the two hosts: (host, port, the name its certificate must carry, STARTTLS protocol).
ENDPOINTS = [
    ("node1", 2379, "node1", None),  # etcd, clients
    ("node1", 2380, "node1", None),  # etcd, peers
    ("node1", 8008, "node1", None),  # Patroni REST
    ("node2", 8008, "node2", None),
    ("node1", 5432, "node1", "postgres"),  # PostgreSQL
    ("node2", 5432, "node2", "postgres"),
    ("node1", 8432, "node1", None),  # pgBackRest's TLS server
    ("node2", 8432, "node2", None),
    ("node2", 443, PUBLIC_NAME, None),  # HAProxy: the public endpoint
    ("node2", 8443, "node2", None),  # HAProxy: the balancer-to-instance hop
    ("node2", 7000, "node2", None),  # HAProxy: stats
]


@dataclass
class Quick:
    bed: hosts.Testbed
    inventory: Path
    deploy_dir: Path
    source: str
    first: Run

    @property
    def pki(self) -> Path:
        return self.deploy_dir / "pki"


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Quick]:
    """The two hosts after a first site.yml; removed at the end of the module, also when it fails."""
    require_podman_hosts()
    workdir = tmp_path_factory.mktemp("quick")
    deploy_dir = workdir / "deploy"
    deploy_dir.mkdir()
    source = f"punchclock_source={head_commit()}"
    with hosts.running(["node1", "node2"], workdir=workdir / "hosts") as bed:
        inventory = bed.write_inventory(GROUPS)
        first = playbook(inventory, deploy_dir, "-e", source)
        yield Quick(bed, inventory, deploy_dir, source, first)


def post_stamp(quick: Quick) -> None:
    """POST /app through the public endpoint, verified against the deployment's CA: 201 with a receipt."""
    public = quick.bed.hosts["node2"].address
    curl = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--max-time", "30", "--cacert", str(quick.pki / "ca.crt"),
         "--resolve", f"{PUBLIC_NAME}:443:{public}",
         "-X", "POST", f"https://{PUBLIC_NAME}/app",
         "-o", "-", "-w", "\n%{http_code}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    body, _, status = curl.stdout.rpartition("\n")
    assert (status, curl.returncode) == ("201", 0), curl.stderr
    assert set(json.loads(body)) == {"id", "recorded_at"}


def served(quick: Quick) -> dict[tuple[str, int], certs.Certificate]:
    """What each endpoint serves, verified against the CA and its name (etcd and HAProxy's hop want a client
    certificate: the host's own)."""
    return {
        (host, port): certs.served(
            quick.bed.hosts[host].address,
            port,
            quick.pki / "ca.crt",
            name,
            starttls=starttls,
            cert=quick.pki / f"{host}.crt",
            key=quick.pki / f"{host}.key",
        )
        for host, port, name, starttls in ENDPOINTS
    }


def test_site_provisions_two_hosts_idempotently_and_serves_https(quick: Quick) -> None:
    """Given two bare hosts, site.yml serves POST /app over verified TLS, and a second run changes nothing."""
    second = playbook(quick.inventory, quick.deploy_dir, "-e", quick.source)
    print(f"\nprovision: first run {quick.first.seconds:.0f} s, second run {second.seconds:.0f} s")

    assert second.changed == {"node1": 0, "node2": 0}, second.output[-4000:]
    post_stamp(quick)


def test_database_nodes_archive_into_the_repository(quick: Quick) -> None:
    """Given node1 holding the pgBackRest repository, pgbackrest check passes on each database node (a WAL switch
    whose segment must reach the repository, node2's through node1's TLS server) and the archive is listed."""
    deployment = Deployment(quick.bed, quick.deploy_dir, GROUPS)
    for node in GROUPS["postgres_cluster"]:
        deployment.pgbackrest("check", host=node)
    (stanza,) = json.loads(deployment.pgbackrest("--output=json", "info"))
    assert stanza["status"]["code"] == 2, stanza["status"]  # 2: no backup yet; the stanza and its archive exist
    assert stanza["archive"][0]["max"], stanza


def test_rotate_certs_reissues_every_certificate_and_every_endpoint_serves_it(quick: Quick) -> None:
    """Given the serving hosts, rotate-certs.yml with tls_reissue=true makes every TLS endpoint serve a new
    certificate of the CA, a second run with nothing due changes nothing, and POST /app still answers 201."""
    before = served(quick)

    rotation = playbook(quick.inventory, quick.deploy_dir, "-e", "tls_reissue=true", name="rotate-certs.yml")
    after = served(quick)
    again = playbook(quick.inventory, quick.deploy_dir, name="rotate-certs.yml")
    print(f"\nrotate-certs.yml: re-issuing {rotation.seconds:.0f} s, again with nothing due {again.seconds:.0f} s")

    installed = {host: certs.installed(quick.pki / f"{host}.crt") for host in ("node1", "node2")}
    assert {endpoint: cert.serial for endpoint, cert in after.items()} == {
        endpoint: installed[endpoint[0]].serial for endpoint in after
    }
    assert [e for e, cert in after.items() if cert.serial == before[e].serial] == []
    assert [e for e, cert in after.items() if cert.not_before <= before[e].not_before] == []
    assert again.changed == {"node1": 0, "node2": 0}, again.output[-4000:]
    post_stamp(quick)
