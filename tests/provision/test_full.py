"""The full provisioning test (make test-provision): six bare Debian 12 hosts, the example inventory's shape,
taken to a serving cluster by site.yml; a second run changes nothing; then, under a load of POSTs through the
floating public address (every receipt checked afterwards on every database node), the faults a deployment
meets: the leader's host killed, the leader cut off the network, a web node's service stopped, the balancer
holding the floating address killed; the day-2 playbooks under load: a restarting configuration change, a web
node added, a database node and etcd member added (it streams and holds every receipt, a second run changes
nothing), every certificate re-issued and served on every TLS endpoint of the eight hosts; and the restore drill:
a backup taken under load from the repository host, restored there and checked receipt by receipt.

db1-db3: etcd, Patroni/PostgreSQL. web1, web2: HAProxy (database routing and the public endpoint), punchclock
and keepalived. backup1: the pgBackRest repository (and PostgreSQL's binaries for restores). Added on day 2:
web3 (a web node) and db4 (etcd and Patroni/PostgreSQL).
The tests run in the file's order, each leaving the deployment healthy for the next; a day-2 playbook runs with
the inventory the earlier ones left (a configuration change stays in it), so none reverts another's change.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
import yaml

from punchclock_tools import hosts
from punchclock_tools.cluster.patroni import wait
from punchclock_tools.load import Load, Outcome, Verdict, lost_on, verify
from punchclock_tools.paths import REPO
from punchclock_tools.provisioned import Deployment
from tests.ha.conftest import record
from tests.provision.conftest import CALL_FAILED, Run, head_commit, playbook, require_podman_hosts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

NAMES = ["db1", "db2", "db3", "web1", "web2", "backup1"]
GROUPS = {
    "etcd_cluster": ["db1", "db2", "db3"],
    "postgres_cluster": ["db1", "db2", "db3"],
    "web": ["web1", "web2"],
    "balancers": ["web1", "web2"],
    "pgbackrest_repo": ["backup1"],
}
VIP_OFFSET = 100  # the floating address: an address of the run's subnet no host takes
RATE = 50.0  # POSTs per second through the public address


@dataclass
class Provisioned:
    deployment: Deployment
    inventory: Path
    deploy_dir: Path
    source: str
    first: Run
    second: Run
    early_backup: str  # the label of a full backup taken before any fault: restoring it replays every failover
    variables: dict[str, object]  # the inventory's all: vars, as the day-2 tests change them
    host_vars: dict[str, dict[str, object]]

    def write_inventory(self) -> Path:
        """The inventory of the deployment as it is now: its groups, variables and host variables."""
        return self.deployment.bed.write_inventory(self.deployment.groups, self.variables, self.host_vars)

    def playbook(self, name: str, *args: str, timeout: float = 1500) -> Run:
        """A day-2 playbook against the inventory as it is now, deploying the fixed commit."""
        return playbook(self.write_inventory(), self.deploy_dir, "-e", self.source, *args, name=name, timeout=timeout)


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioned]:
    if os.environ.get("PUNCHCLOCK_PROVISION_FULL") != "1":
        pytest.skip("make test-provision runs the six-host set (PUNCHCLOCK_PROVISION_FULL=1)")
    require_podman_hosts()
    root = tmp_path_factory.mktemp("provision-full")
    deploy_dir = root / "deploy"
    deploy_dir.mkdir()
    source = f"punchclock_source={head_commit()}"
    with hosts.running(NAMES, workdir=root / "hosts") as bed:
        vip = bed.address(VIP_OFFSET)
        variables: dict[str, object] = {"public_vip": vip, "keepalived_vip_prefix": bed.subnet.prefixlen}
        inventory = bed.write_inventory(GROUPS, variables)
        first = playbook(inventory, deploy_dir, "-e", source, timeout=2400)
        second = playbook(inventory, deploy_dir, "-e", source, timeout=1200)
        deployment = Deployment(bed, deploy_dir, {name: list(members) for name, members in GROUPS.items()}, vip=vip)
        early = deployment.backup("full")
        yield Provisioned(
            deployment, inventory, deploy_dir, source, first, second, str(early["label"]), variables, host_vars={}
        )


JOURNAL_UNITS = ("patroni", "etcd", "haproxy", "punchclock", "pgbackrest-server")


@pytest.fixture(autouse=True)
def journals_on_failure(request: pytest.FixtureRequest, provisioned: Provisioned) -> Iterator[None]:
    """When a test fails, every host's journal of the cluster's units since the test began is kept beside the
    run's files (the hosts are removed at the module's end, their logs with them)."""
    started = time.time()
    yield
    if not request.node.stash.get(CALL_FAILED, False):
        return
    keep = provisioned.deploy_dir.parent / "journals" / request.node.name
    keep.mkdir(parents=True, exist_ok=True)
    units = " ".join(f"-u {unit}" for unit in JOURNAL_UNITS)
    for name in provisioned.deployment.bed.hosts:
        proc = provisioned.deployment.bed.ssh(
            name, f"journalctl --no-pager -o short-precise --since @{int(started) - 5} {units}", timeout=60
        )
        (keep / f"{name}.log").write_text(proc.stdout + proc.stderr)
    print(f"\njournals of the failed test kept in {keep}")


def test_site_provisions_six_hosts_idempotently_and_serves_https(
    provisioned: Provisioned, report: dict[str, object]
) -> None:
    """Given six bare hosts, site.yml serves POST /app over verified TLS on the floating address, a second run
    changes nothing, and the floating address sits on one balancer."""
    deployment = provisioned.deployment
    report.update(
        first_apply_seconds=round(provisioned.first.seconds), second_apply_seconds=round(provisioned.second.seconds)
    )
    assert provisioned.second.changed == dict.fromkeys(NAMES, 0), provisioned.second.output[-4000:]
    assert deployment.vip_holder() in GROUPS["balancers"]
    curl = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "--max-time", "30", "--cacert", str(deployment.ca_file),
         "-X", "POST", f"{deployment.public_url}/app", "-o", "-", "-w", "\n%{http_code}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    body, _, status = curl.stdout.rpartition("\n")
    assert (status, curl.returncode) == ("201", 0), curl.stderr
    assert set(json.loads(body)) == {"id", "recorded_at"}
    deployment.wait_healthy()


def _under_load(
    deployment: Deployment,
    report: dict[str, object],
    fault: Callable[[], None],
    recovered_enough: Callable[[], object],
    heal: Callable[[], object],
    max_seconds: float = 420,
    **extra: object,
) -> Outcome:
    """Load through the public address; ``fault``; wait for ``recovered_enough`` and a flow of receipts again;
    stop the load, ``heal``, wait for a healthy cluster, then check every receipt on every database node."""
    deployment.wait_healthy()
    load = Load(deployment.public_url, rate=RATE, max_seconds=max_seconds, ca_file=str(deployment.ca_file))
    with load.running():
        load.wait_acknowledged(100, timeout=60)
        load.mark_event()
        fault()
        fault_at = time.monotonic()
        recovered_enough()
        load.wait_acknowledged(int(RATE * 5), timeout=180)
        recovered_seconds = time.monotonic() - fault_at
    heal()
    deployment.wait_healthy(420)
    with deployment.dsns(via="web1") as dsns:
        leader = deployment.leader()
        assert leader is not None
        verdict = verify(load.outcome, dsns[leader])
        lost = lost_on(load.outcome, dsns)
    record(report, verdict, load.outcome, lost_by_node=lost, recovered_seconds=round(recovered_seconds, 2), **extra)
    assert (verdict.lost, verdict.duplicates) == (0, 0), verdict.line()
    assert [name for name, count in lost.items() if count != 0] == [], lost
    return load.outcome


def test_leader_host_killed(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given the leader's host killed (podman kill: its etcd member, Patroni and PostgreSQL gone at once), a
    standby is promoted and writes flow again; when the host is back it rejoins with every receipt."""
    deployment, bed = provisioned.deployment, provisioned.deployment.bed
    old = deployment.leader()
    assert old is not None
    found: dict[str, str] = {}
    _under_load(
        deployment,
        report,
        fault=lambda: bed.kill(old),
        recovered_enough=lambda: found.setdefault("leader", deployment.wait_new_leader(old)),
        heal=lambda: bed.start(old),
        old_leader=old,
    )
    report["new_leader"] = found["leader"]


def test_leader_cut_off_the_network(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given the leader disconnected from the network, it loses its lock and the others elect a leader; once
    reconnected it rejoins as a replica with every receipt acknowledged meanwhile."""
    deployment, bed = provisioned.deployment, provisioned.deployment.bed
    old = deployment.leader()
    assert old is not None
    _under_load(
        deployment,
        report,
        fault=lambda: bed.disconnect(old),
        recovered_enough=lambda: deployment.wait_new_leader(old),
        heal=lambda: bed.reconnect(old),
        old_leader=old,
    )


def test_web_node_service_stopped(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given punchclock stopped on the web node not holding the floating address (it drains), the balancer
    sends everything to the other one."""
    deployment, bed = provisioned.deployment, provisioned.deployment.bed
    holder = deployment.vip_holder()
    other = next(name for name in GROUPS["web"] if name != holder)

    def stop() -> None:
        assert bed.ssh(other, "systemctl stop punchclock", timeout=90).returncode == 0

    _under_load(
        deployment,
        report,
        fault=stop,
        recovered_enough=lambda: True,
        heal=lambda: bed.ssh(other, "systemctl start punchclock", timeout=90),
        stopped=other,
    )


def test_balancer_holding_the_address_killed(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given the balancer that holds the floating address killed (its HAProxy, punchclock and keepalived gone),
    keepalived on the other balancer takes the address and the public endpoint answers again."""
    deployment, bed = provisioned.deployment, provisioned.deployment.bed
    holder = deployment.vip_holder()
    assert holder is not None
    other = next(name for name in GROUPS["balancers"] if name != holder)
    _under_load(
        deployment,
        report,
        fault=lambda: bed.kill(holder),
        recovered_enough=lambda: wait(
            lambda: deployment.vip_holder() == other, 60, "the address on the other balancer"
        ),
        heal=lambda: bed.start(holder),
        killed=holder,
    )


def _show(dsn: str, setting: str) -> str:
    async def read() -> str:
        conn = await asyncpg.connect(dsn, timeout=10)
        try:
            return str(await conn.fetchval(f"SHOW {setting}"))
        finally:
            await conn.close()

    return asyncio.run(read())


def _playbook_under_load(
    provisioned: Provisioned,
    report: dict[str, object],
    name: str,
    *args: str,
    before: Callable[[], None] = lambda: None,
    **extra: object,
) -> tuple[Outcome, Run]:
    """A day-2 playbook run as the fault of ``_under_load`` (``before`` it, under load already: an inventory
    change); its seconds recorded as playbook_seconds."""
    runs: list[Run] = []

    def fault() -> None:
        before()
        runs.append(provisioned.playbook(name, *args))

    outcome = _under_load(
        provisioned.deployment,
        report,
        fault=fault,
        recovered_enough=lambda: True,
        heal=lambda: None,
        max_seconds=1500,
        **extra,
    )
    report["playbook_seconds"] = round(runs[0].seconds)
    return outcome, runs[0]


def test_rolling_configuration_change(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given a change of max_connections (it needs PostgreSQL restarted), rolling-config.yml restarts the replicas
    one at a time, switches over and restarts the old leader, under load, and every node runs the new value."""
    deployment = provisioned.deployment
    defaults = yaml.safe_load((REPO / "deploy/ansible/roles/patroni/defaults/main.yml").read_text())
    dynamic = defaults["patroni_dynamic"]
    wanted = int(dynamic["postgresql"]["parameters"]["max_connections"]) + 10
    dynamic["postgresql"]["parameters"]["max_connections"] = wanted
    # As an operator would: the change goes into the inventory, so every later playbook applies it too (an -e
    # given to this run alone would be reverted by the next playbook that applies the patroni role).
    provisioned.variables["patroni_dynamic"] = dynamic
    old = deployment.leader()
    _playbook_under_load(provisioned, report, "rolling-config.yml", old_leader=old)
    report["new_leader"] = deployment.leader()
    with deployment.dsns(via="web1") as dsns:
        assert {node: _show(dsn, "max_connections") for node, dsn in dsns.items()} == dict.fromkeys(dsns, str(wanted))
    assert deployment.leader() != old


def test_add_web_node(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given a sixth host added to group web with new_node, add-web-node.yml makes it serve under load with no
    failed request, and the balancers send it requests."""
    deployment, bed = provisioned.deployment, provisioned.deployment.bed
    bed.add("web3")
    deployment.groups["web"].append("web3")
    provisioned.host_vars["web3"] = {"new_node": True}
    outcome, _ = _playbook_under_load(provisioned, report, "add-web-node.yml")
    assert outcome.failures == []
    assert [m["name"] for m in deployment.members() if m.get("pending_restart")] == []  # nothing reverted
    for balancer in GROUPS["balancers"]:
        assert deployment.backend_state(balancer, "apps", "web3") == "UP"


def test_add_database_node(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given a host db4 added to etcd_cluster and postgres_cluster with new_node, add-db-node.yml under load makes
    it an etcd member and a streaming replica with no failed request and every receipt on it too; the web nodes'
    HAProxy lists it, and a second run changes nothing."""
    deployment, bed = provisioned.deployment, provisioned.deployment.bed
    bed.add("db4")
    provisioned.host_vars.pop("web3", None)  # added by the test before: an existing web node now
    provisioned.host_vars["db4"] = {"new_node": True}

    def join() -> None:
        # In the groups from now on: the cluster counts four members healthy, and receipts are checked on every
        # node of postgres_cluster, db4 included, once it streams (the load's end waits for a healthy cluster).
        for group in ("etcd_cluster", "postgres_cluster"):
            deployment.groups[group].append("db4")

    outcome, _ = _playbook_under_load(provisioned, report, "add-db-node.yml", before=join)
    again = provisioned.playbook("add-db-node.yml")
    members = deployment.etcd_members("db1")
    db4 = next((m for m in deployment.members() if m["name"] == "db4"), {})
    report["second_run_seconds"] = round(again.seconds)
    assert outcome.failures == []
    assert [m["name"] for m in deployment.members() if m.get("pending_restart")] == []
    assert sorted(m.get("name", "") for m in members) == ["db1", "db2", "db3", "db4"], members
    assert all(m.get("clientURLs") for m in members), members  # every member started
    assert (db4.get("role"), db4.get("state")) in {("replica", "streaming"), ("sync_standby", "streaming")}, db4
    for web in deployment.groups["web"]:
        assert deployment.backend_state(web, "postgres_rw", "db4") == "DOWN", web  # a replica: listed, not primary
    assert again.changed == dict.fromkeys(bed.hosts, 0), again.output[-4000:]


def test_rotate_certs_under_load(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given the eight serving hosts under load, rotate-certs.yml with tls_reissue=true makes every TLS endpoint
    serve a new certificate of the CA (the one installed) with no receipt lost or duplicated."""
    deployment = provisioned.deployment
    before = deployment.served_certificates()
    outcome, _ = _playbook_under_load(provisioned, report, "rotate-certs.yml", "-e", "tls_reissue=true")
    after = deployment.served_certificates()
    installed = {host: deployment.installed_certificate(host) for host in deployment.bed.hosts}
    report.update(
        endpoints=len(after),
        failures=[(round(f.at - outcome.started, 1), f.status, f.detail[:120]) for f in outcome.failures[:20]],
    )
    assert {str(e): c.serial for e, c in after.items()} == {str(e): installed[e.host].serial for e in after}
    assert [str(e) for e, c in after.items() if c.serial == before[e].serial] == []


def _restore_and_verify(
    deployment: Deployment, outcome: Outcome, name: str, backup_set: str | None
) -> tuple[Verdict, dict[str, object]]:
    """One restore on the repository host to the end of the archive, its receipts checked, then discarded."""
    copy = deployment.restore_copy("drill", backup_set=backup_set)
    try:
        with deployment.copy_dsn(copy) as dsn:
            verdict = verify(outcome, dsn)
    finally:
        deployment.discard_copy(copy)
    return verdict, {
        "name": name,
        "backup": backup_set or "newest",
        "restore_seconds": round(copy.restore_seconds, 1),
        "recovery_seconds": round(copy.recovery_seconds, 1),
        "rto_seconds": round(copy.rto_seconds, 1),
        "lost": verdict.lost,
        "duplicates": verdict.duplicates,
    }


def test_restore_drill_on_the_repository_host(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given a load of POSTs and a full backup taken under it from the repository host, that backup and the one
    taken before every fault, each restored there to the end of the archive on a private port with archiving off,
    hold every acknowledged receipt exactly once (the older one by replaying WAL across every failover)."""
    deployment = provisioned.deployment
    deployment.wait_healthy()
    load = Load(deployment.public_url, rate=RATE, max_seconds=900, ca_file=str(deployment.ca_file))
    with load.running():
        load.wait_acknowledged(int(RATE * 5), timeout=60)
        load.mark_event()
        started = time.monotonic()
        backup = deployment.backup("full")
        backup_seconds = time.monotonic() - started
        # Receipts after the backup ended exist in a copy only through the archived WAL replayed onto it.
        after_backup = load.outcome.acknowledged
        load.wait_acknowledged(int(RATE * 10), timeout=180)
    with deployment.dsns(via="web1") as dsns:
        leader = deployment.leader()
        assert leader is not None
        archive_timeout = _show(dsns[leader], "archive_timeout")  # PostgreSQL shows 60 s as "1min"
    archive_timeout_seconds = int(archive_timeout.rstrip("smin")) * (60 if archive_timeout.endswith("min") else 1)
    # The end of the archive: check switches the leader's WAL segment and waits until the repository has it.
    started = time.monotonic()
    deployment.pgbackrest("check")
    push_seconds = time.monotonic() - started
    newest, newest_figures = _restore_and_verify(deployment, load.outcome, "newest", None)
    early, early_figures = _restore_and_verify(deployment, load.outcome, "before-the-faults", provisioned.early_backup)
    record(
        report,
        newest,
        load.outcome,
        backup_type=backup["type"],
        backup_seconds=round(backup_seconds, 1),
        database_bytes=backup["info"]["size"],
        repository_bytes=backup["info"]["repository"]["size"],
        acknowledged_after_backup=load.outcome.acknowledged - after_backup,
        push_seconds=round(push_seconds, 1),
        archive_timeout_seconds=archive_timeout_seconds,
        rpo_bound_seconds=round(archive_timeout_seconds + push_seconds, 1),
        restores=[newest_figures, early_figures],
    )
    assert [(v.lost, v.duplicates) for v in (newest, early)] == [(0, 0), (0, 0)], [newest.line(), early.line()]
