"""The full provisioning test (make test-provision): five bare Debian 12 hosts, the example inventory's shape,
taken to a serving cluster by site.yml; a second run changes nothing; then, under a load of POSTs through the
floating public address (every receipt checked afterwards on every database node), the faults a deployment
meets: the leader's host killed, the leader cut off the network, a web node's service stopped, the balancer
holding the floating address killed; the day-2 playbooks under load; and the restore drill: a backup taken under
load from the repository host, restored there and checked receipt by receipt.

db1-db3: etcd, Patroni/PostgreSQL. web1, web2: HAProxy (database routing and the public endpoint), punchclock
and keepalived. backup1: the pgBackRest repository (and PostgreSQL's binaries for restores).
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
from tests.provision.conftest import Run, head_commit, playbook, require_podman_hosts

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


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provisioned]:
    if os.environ.get("PUNCHCLOCK_PROVISION_FULL") != "1":
        pytest.skip("make test-provision runs the five-host set (PUNCHCLOCK_PROVISION_FULL=1)")
    require_podman_hosts()
    root = tmp_path_factory.mktemp("provision-full")
    deploy_dir = root / "deploy"
    deploy_dir.mkdir()
    source = f"punchclock_source={head_commit()}"
    with hosts.running(NAMES, workdir=root / "hosts") as bed:
        vip = bed.address(VIP_OFFSET)
        inventory = bed.write_inventory(GROUPS, {"public_vip": vip, "keepalived_vip_prefix": bed.subnet.prefixlen})
        first = playbook(inventory, deploy_dir, "-e", source, timeout=2400)
        second = playbook(inventory, deploy_dir, "-e", source, timeout=1200)
        deployment = Deployment(bed, deploy_dir, {name: list(members) for name, members in GROUPS.items()}, vip=vip)
        early = deployment.backup("full")
        yield Provisioned(deployment, inventory, deploy_dir, source, first, second, str(early["label"]))


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


def test_rolling_configuration_change(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given a change of max_connections (it needs PostgreSQL restarted), rolling-config.yml restarts the replicas
    one at a time, switches over and restarts the old leader, under load, and every node runs the new value."""
    deployment = provisioned.deployment
    defaults = yaml.safe_load((REPO / "deploy/ansible/roles/patroni/defaults/main.yml").read_text())
    dynamic = defaults["patroni_dynamic"]
    wanted = int(dynamic["postgresql"]["parameters"]["max_connections"]) + 10
    dynamic["postgresql"]["parameters"]["max_connections"] = wanted
    overrides = provisioned.deploy_dir / "rolling-overrides.json"
    overrides.write_text(json.dumps({"patroni_dynamic": dynamic}))
    old = deployment.leader()
    runs: list[Run] = []
    _under_load(
        deployment,
        report,
        fault=lambda: runs.append(
            playbook(
                provisioned.inventory,
                provisioned.deploy_dir,
                "-e",
                provisioned.source,
                "-e",
                f"@{overrides}",
                name="rolling-config.yml",
            )
        ),
        recovered_enough=lambda: True,
        heal=lambda: None,
        max_seconds=1200,
        old_leader=old,
    )
    report.update(playbook_seconds=round(runs[0].seconds), new_leader=deployment.leader())
    with deployment.dsns(via="web1") as dsns:
        assert {node: _show(dsn, "max_connections") for node, dsn in dsns.items()} == dict.fromkeys(dsns, str(wanted))
    assert deployment.leader() != old


def test_add_web_node(provisioned: Provisioned, report: dict[str, object]) -> None:
    """Given a sixth host added to group web with new_node, add-web-node.yml makes it serve under load with no
    failed request, and the balancers send it requests."""
    deployment, bed = provisioned.deployment, provisioned.deployment.bed
    bed.add("web3")
    deployment.groups["web"].append("web3")
    inventory = bed.write_inventory(
        deployment.groups,
        {"public_vip": deployment.vip, "keepalived_vip_prefix": bed.subnet.prefixlen},
        host_vars={"web3": {"new_node": True}},
    )
    runs: list[Run] = []
    outcome = _under_load(
        deployment,
        report,
        fault=lambda: runs.append(
            playbook(inventory, provisioned.deploy_dir, "-e", provisioned.source, name="add-web-node.yml", timeout=1500)
        ),
        recovered_enough=lambda: True,
        heal=lambda: None,
        max_seconds=1500,
    )
    report["playbook_seconds"] = round(runs[0].seconds)
    assert outcome.failures == []
    for balancer in GROUPS["balancers"]:
        assert deployment.backend_state(balancer, "apps", "web3") == "UP"


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
