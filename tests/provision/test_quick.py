"""The quick form of the provisioning test (make test): two bare Debian 12 hosts taken to a serving cluster by
site.yml, a second run that changes nothing, and a stamp over HTTPS verified against the deployment's CA; then
rotate-certs.yml re-issues every certificate and each TLS endpoint serves the new one. The exporters answer
/metrics only over verified TLS to a client certificate of the deployment's CA, on the private address only.

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
from punchclock_tools.provisioned import PUBLIC_NAME, Deployment
from tests.provision.conftest import Run, head_commit, playbook, require_podman_hosts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

GROUPS = {
    "etcd_cluster": ["node1"],
    "postgres_cluster": ["node1", "node2"],
    "web": ["node2"],
    "balancers": ["node2"],
    "pgbackrest_repo": ["node1"],
}


NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT = certs.NODE_EXPORTER_PORT, certs.POSTGRES_EXPORTER_PORT


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


def served(quick: Quick) -> dict[certs.Endpoint, certs.Certificate]:
    """What every TLS endpoint of the two hosts serves, verified against the CA and the name it must carry."""
    return Deployment(quick.bed, quick.deploy_dir, GROUPS).served_certificates()


@dataclass(frozen=True)
class Answer:
    curl_exit: int
    status: str  # "000" when no HTTP response came (a refused TLS handshake)
    body: str


def get_metrics(address: str, port: int, ca: Path, *client: Path, scheme: str = "https") -> Answer:
    """GET /metrics with curl, verifying the served certificate against ``ca`` (and the address it names),
    presenting ``client`` (a certificate and its key) when given."""
    argv = ["curl", "-sS", "--max-time", "20", "--cacert", str(ca), "-o", "-", "-w", "\n%{http_code}"]
    if client:
        cert, key = client
        argv += ["--cert", str(cert), "--key", str(key)]
    curl = subprocess.run(
        [*argv, f"{scheme}://{address}:{port}/metrics"], capture_output=True, text=True, timeout=60, check=False
    )
    body, _, status = curl.stdout.rpartition("\n")
    return Answer(curl.returncode, status, body)


def foreign_client_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed client certificate, of no CA the deployment trusts."""
    cert, key = directory / "foreign.crt", directory / "foreign.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=prometheus",
         "-addext", "extendedKeyUsage=clientAuth"],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    return cert, key


def listeners(quick: Quick, host: str, ports: set[int]) -> set[str]:
    """The local address:port of every TCP socket listening on one of ``ports`` on ``host``, whatever its process
    (by port, since ``ss -p`` names no process inside these containers)."""
    ss = quick.bed.ssh(host, "ss -Htln")
    assert ss.returncode == 0, ss.stderr
    local = [line.split()[3] for line in ss.stdout.splitlines()]
    return {address for address in local if int(address.rpartition(":")[2]) in ports}


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


def test_exporters_answer_only_tls_clients_with_a_certificate_of_the_ca(quick: Quick, tmp_path: Path) -> None:
    """Given the serving hosts, each exporter answers /metrics over TLS verified against the deployment's CA to a
    client presenting a certificate of that CA (node_exporter: node_ metrics; postgres_exporter: pg_up 1, no failed
    query, the queries file's slot metric on the leader), and refuses a client without a certificate, one with a
    certificate of another CA, and plain HTTP; and the exporters listen on the private address only."""
    ca, scraper = quick.pki / "ca.crt", (quick.pki / "node1.crt", quick.pki / "node1.key")
    foreign = foreign_client_certificate(tmp_path)
    leader = Deployment(quick.bed, quick.deploy_dir, GROUPS).leader()
    exporters = [(host, NODE_EXPORTER_PORT) for host in ("node1", "node2")]
    exporters += [(host, POSTGRES_EXPORTER_PORT) for host in GROUPS["postgres_cluster"]]

    for host, port in exporters:
        address = quick.bed.hosts[host].address
        answer = get_metrics(address, port, ca, *scraper)
        assert (answer.curl_exit, answer.status) == (0, "200"), (host, port, answer)
        samples = answer.body.splitlines()
        if port == NODE_EXPORTER_PORT:
            assert [s for s in samples if s.startswith("node_cpu_seconds_total{")], (host, answer.body[-2000:])
            assert [s for s in samples if s.startswith("node_systemd_unit_state{")], (host, answer.body[-2000:])
        else:
            assert "pg_up 1" in samples, (host, answer.body[-2000:])
            assert "pg_exporter_last_scrape_error 0" in samples, (host, answer.body[-2000:])
            if host == leader:
                assert [s for s in samples if s.startswith("pg_replication_slots_pg_wal_lsn_diff{")], answer.body

        for refused in (get_metrics(address, port, ca), get_metrics(address, port, ca, *foreign)):
            assert (refused.status, refused.curl_exit != 0) == ("000", True), (host, port, refused)  # no handshake
        plain = get_metrics(address, port, ca, *scraper, scheme="http")
        assert (plain.status, plain.body.strip()) == ("400", "Client sent an HTTP request to an HTTPS server.")

    for host in ("node1", "node2"):
        address = quick.bed.hosts[host].address
        ports = {NODE_EXPORTER_PORT} | ({POSTGRES_EXPORTER_PORT} if host in GROUPS["postgres_cluster"] else set())
        found = listeners(quick, host, {NODE_EXPORTER_PORT, POSTGRES_EXPORTER_PORT})
        assert found == {f"{address}:{port}" for port in ports}  # none on 0.0.0.0, [::] or loopback


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
        endpoint: installed[endpoint.host].serial for endpoint in after
    }
    assert [e for e, cert in after.items() if cert.serial == before[e].serial] == []
    assert [e for e, cert in after.items() if cert.not_before <= before[e].not_before] == []
    assert again.changed == {"node1": 0, "node2": 0}, again.output[-4000:]
    post_stamp(quick)
