"""Backups on the real HA cluster: the drill through the API, after a failover, a restore across a failover from
the pre-failover backup (no hole in the archive), and the lost-cluster runbook.

These scenarios start their own cluster (a few minutes in all), so they run with
``make test-backup-cluster`` rather than in ``make test``, whose restore drill uses a private server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from pcbackup.restore import restore
from pcbackup.sources import Source, load_cluster
from pcbackup.sql import stamps
from pcbackup.writers import normalise
from punchclock_tools.postgres import Database
from tests.backup.conftest import pcbackup

if TYPE_CHECKING:
    from punchclock_tools.cluster.layout import Layout

TOOLS = ("etcd", "haproxy", "supervisord", "pgbackrest")

pytestmark = [pytest.mark.ha, pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def state() -> Iterator[Path]:
    """A running cluster (etcd x3, Patroni x3, HAProxy, two punchclock instances) in its own state directory."""
    if os.environ.get("PUNCHCLOCK_BACKUP_CLUSTER") != "1":
        pytest.skip("the cluster form of the backup tests runs with `make test-backup-cluster`")
    if os.geteuid() != 0 or any(shutil.which(tool) is None for tool in TOOLS):
        pytest.skip("needs root and the cluster's Debian packages (make test-backup-cluster installs them)")
    from punchclock_tools.cluster import control

    path = Path(tempfile.mkdtemp(prefix="punchclock-backup-ha-"))
    path.chmod(0o755)
    try:
        control.up(path / "cluster", apps=2)
        yield path / "cluster"
    finally:
        keep = os.environ.get("PUNCHCLOCK_BACKUP_KEEP_LOGS")
        if keep and (path / "cluster" / "log").exists():
            shutil.copytree(path / "cluster" / "log", Path(keep) / path.name, dirs_exist_ok=True)
        control.down(path / "cluster", purge=True)
        shutil.rmtree(path, ignore_errors=True)


def scheduled_chain(state: Path) -> None:
    """What the timers build: a full backup in each repository, canary heartbeats, a differential."""
    for args in (("--type", "full", "--repo", "1"), ("--type", "full", "--repo", "2")):
        assert pcbackup("--state", str(state), "backup", *args).returncode == 0
    for _ in range(3):
        heartbeat = pcbackup("--state", str(state), "metrics", "--canary")
        assert (heartbeat.returncode, "no canary row" in heartbeat.stderr) == (0, False), heartbeat.stderr
        time.sleep(0.5)
    assert pcbackup("--state", str(state), "backup", "--type", "diff", "--repo", "1").returncode == 0


def drill(state: Path) -> dict[str, Any]:
    report = state.parent / "drill.json"
    result = pcbackup("--state", str(state), "drill", "--scratch", str(state.parent), "--report", str(report))
    assert result.returncode == 0, result.stderr + result.stdout
    return dict(json.loads(report.read_text()))


def post(url: str, key: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/app", headers={"Idempotency-Key": key}, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def test_drill_on_the_cluster_proves_the_scheduled_chain_row_exact(state: Path) -> None:
    """Given the running cluster with its scheduled chain in two repositories, when the drill runs, then both
    repositories verify and every restore (newest of each, oldest full mid-window) is row-exact."""
    scheduled_chain(state)
    report = drill(state)
    assert (report["ok"], report["source"], report["verify"]) == (True, "cluster", {"repo1": True, "repo2": True})
    assert (report["missing"], report["restored_after_target"], report["unknown"]) == ([], [], [])


def test_backups_and_drill_keep_working_after_the_leader_crashes(state: Path) -> None:
    """Given a backup, when the leader's machine crashes and Patroni promotes another node, then a backup from the
    new leader succeeds and the drill passes on the new timeline."""
    from punchclock_tools.cluster.faults import Cluster
    from punchclock_tools.cluster.layout import Layout

    cluster = Cluster(Layout.load(state))
    scheduled_chain(state)
    old = cluster.wait_leader()
    cluster.kill_node(old)
    new = cluster.wait_leader(timeout=90, other_than=old)
    backup = pcbackup("--state", str(state), "backup", "--type", "incr")
    for _ in range(3):  # heartbeats on the new timeline, so the window spans the failover
        pcbackup("--state", str(state), "metrics", "--canary")
        time.sleep(0.5)
    report = drill(state)
    cluster.start(old)
    assert (new != old, backup.returncode) == (True, 0), backup.stderr
    assert report["ok"] is True


def leader_db(layout: Layout, name: str) -> Database:
    node = layout.node(name)
    return Database(Path(node.socket_dir), node.pg_port, "postgres")


def waiting_for_archive(layout: Layout, name: str) -> set[str]:
    """The segments ``name`` has finished but not archived: its pg_wal/archive_status/*.ready files."""
    status = Path(layout.node(name).data_dir) / "pg_wal" / "archive_status"
    return {path.name.removesuffix(".ready") for path in status.glob("*.ready")}


def test_restore_across_a_failover_from_the_pre_failover_backup_has_no_hole(state: Path) -> None:
    """Given a full backup and then a leader whose archiving fails, with acknowledged stamps in WAL it never
    pushed, when that leader dies and another node is promoted, then restoring the pre-failover full backup to
    the latest point brings back every acknowledged stamp, row-exact, before and after the failover."""
    from punchclock_tools.cluster.faults import Cluster, wait_until
    from punchclock_tools.cluster.layout import Layout

    layout = Layout.load(state)
    cluster = Cluster(layout)
    cluster.settle()
    source: Source = load_cluster(state)
    url = str(source.app_url)
    source.br.ensure_stanza()
    label = source.br.backup("full")["label"]
    receipts = {f"pre-{n}": post(url, f"pre-{n}") for n in range(5)}
    old = cluster.wait_leader()
    # The old leader cannot reach the repository: its archive_command fails, its segments wait in .ready.
    db = leader_db(layout, old)
    db.query("ALTER SYSTEM SET archive_command = '/bin/false'")
    db.query("SELECT pg_reload_conf()")
    try:
        receipts |= {f"unarchived-{n}": post(url, f"unarchived-{n}") for n in range(20)}
        segment = db.value("SELECT pg_walfile_name(pg_current_wal_lsn())")
        db.query("SELECT pg_switch_wal()")
        wait_until(lambda: segment in waiting_for_archive(layout, old), 30, f"{segment} finished on {old}")
        cluster.kill_node(old)
        new = cluster.wait_leader(timeout=90, other_than=old)
        receipts |= {f"after-{n}": post(url, f"after-{n}") for n in range(5)}
        source.seal()  # commit and archive the new timeline's WAL up to now
        copy = restore(source.br, state.parent / "across-failover", backup_set=label)
        try:
            restored = stamps(copy.instance.db(source.database))
        finally:
            copy.instance.remove()
    finally:
        cluster.settle()  # starts the old leader again if it was killed
        wait_until(lambda: cluster.node_is_replica(old), 120, f"{old} back as a replica")
        leader_db(layout, old).query("ALTER SYSTEM RESET archive_command")
        leader_db(layout, old).query("SELECT pg_reload_conf()")
    expected = {r["id"]: (r["id"], key, normalise(r["recorded_at"])) for key, r in receipts.items()}
    assert new != old
    assert {i: restored.get(i) for i in expected} == expected


def test_lost_cluster_runbook_brings_every_stamp_back(state: Path) -> None:
    """Given a backup and stamps acknowledged after it, when every node's and etcd's data is lost, then restoring
    the latest backup, releasing it into every node and starting the cluster again serves the same stamps under
    the same keys."""
    from punchclock_tools.cluster import control

    source: Source = load_cluster(state)
    url = str(source.app_url)
    source.br.ensure_stanza()
    source.br.backup("full")
    receipts = {f"runbook-{n}": post(url, f"runbook-{n}") for n in range(10)}
    source.seal()
    spec = json.loads((state / "cluster.json").read_text())
    control.down(state)
    lost = state.parent / "lost"
    lost.mkdir()
    for index, node in enumerate(spec["nodes"]):
        shutil.move(node["data_dir"], lost / f"pg{index + 1}")
    for member in spec["etcd"]:
        shutil.move(member["data_dir"], lost / Path(member["data_dir"]).name)
    copy = restore(source.br, state.parent / "restored")
    copy.instance.release()
    for node in spec["nodes"]:  # every node starts from the same released copy, as the runbook says
        subprocess.run(["cp", "-a", str(copy.instance.data_dir), node["data_dir"]], check=True, timeout=300)
    control.up(state, apps=2)
    replayed = {key: post(url, key) for key in receipts}
    assert replayed == receipts
