"""Scaling a running cluster: an instance added and removed under load fails no request (quick form).

The cluster starts with one instance, each instance in its own cgroup under a CPU quota where the cgroup v1
cpu controller is writable. The full run, load rising and falling over one to three instances, is
``make bench-scaling`` (bench/scaling.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from punchclock_tools.cluster import balancer, cgroup, scale, supervisor
from punchclock_tools.cluster.faults import Cluster, wait_until
from punchclock_tools.cluster.layout import Layout
from punchclock_tools.load import Load, lost_on, verify
from tests.ha.conftest import running_cluster

pytestmark = [pytest.mark.ha, pytest.mark.slow]

QUOTA = 0.5  # cores per instance: enough to start within seconds on a busy machine
WORKERS, RATE = 6, 40.0


@pytest.fixture(scope="module")
def one_instance() -> Iterator[Cluster]:
    """etcd x3, Patroni x3, HAProxy and one instance (under QUOTA where cgroups allow); every cgroup it made
    is gone once it is down."""
    with running_cluster(apps=1, cpu_quota=QUOTA if cgroup.available() else None) as started:
        yield started
    made = {Path(app.cgroup) for app in started.layout.apps if app.cgroup}
    assert [path for path in made if path.exists()] == []


def test_instance_added_and_removed_under_load_fails_no_request(one_instance: Cluster) -> None:
    """Given one instance under load, when a second is added and then drained and removed, then the second
    served requests through HAProxy, and every POST was acknowledged, stored once and on every node."""
    cluster = one_instance
    load = Load(cluster.url, workers=WORKERS, rate=RATE)
    with load.running():
        load.wait_acknowledged(30)
        # When a second instance is added, and serves
        added = scale.scale(cluster.layout, 2)
        wait_until(lambda: balancer.served(cluster.layout, "app2") > 0, 30, "app2 serving requests")
        served = balancer.served(cluster.layout, "app2")
        load.wait_acknowledged(30)
        # And it is drained and removed while the load goes on
        removed = scale.scale(cluster.layout, 1)
        load.wait_acknowledged(30)
    verdict = verify(load.outcome, cluster.leader_dsn())
    lost = lost_on(load.outcome, {node.name: cluster.node_dsn(node.name) for node in cluster.layout.nodes})
    # Then the instance joined, served and left
    assert (added, removed) == (["app2"], ["app2"])
    assert served > 0
    # And no request failed, nothing is lost or doubled, on any node
    assert (verdict.failed, verdict.lost, verdict.duplicates) == (0, 0, 0), load.outcome.failures[:5]
    assert lost == {node.name: 0 for node in cluster.layout.nodes}
    # And the layout, supervisord and HAProxy all know only the instance left
    assert [app.name for app in Layout.load(cluster.layout.root).apps] == ["app1"]
    assert "app2" not in supervisor.processes(cluster.layout)
    assert [server for server in cluster.balancer_servers() if server.endswith("/app2")] == []


def test_each_instance_runs_in_its_own_cgroup_under_the_quota(one_instance: Cluster) -> None:
    """Given a cluster under a CPU quota, when an instance is added, then each instance's process is in a
    cgroup of its own holding the quota, and the added one's cgroup is gone once it is removed."""
    cluster = one_instance
    if cluster.layout.app_cpu_quota is None:
        pytest.skip("no writable cgroup v1 cpu controller here: the cluster runs without a quota")
    scale.scale(cluster.layout, 2)
    placed = {app.name: (cluster.pid(app.name), cgroup.pids(Path(app.cgroup))) for app in cluster.layout.apps}
    quotas = {app.name: cgroup.quota(Path(app.cgroup)) for app in cluster.layout.apps}
    added = Path(cluster.layout.app("app2").cgroup)
    scale.scale(cluster.layout, 1)
    assert {name: pid in pids for name, (pid, pids) in placed.items()} == {"app1": True, "app2": True}
    assert quotas == {"app1": QUOTA, "app2": QUOTA}
    assert len({Path(app.cgroup) for app in cluster.layout.apps} | {added}) == 2
    assert not added.exists()
