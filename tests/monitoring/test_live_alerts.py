"""Alerts proven on real failures: Debian's Prometheus scrapes a real cluster (Patroni, etcd, punchclock, HAProxy's
own exporter, and Debian's postgres_exporter and node_exporter started beside it) with the production rules
shortened by code, a fault is caused for real, and ``/api/v1/alerts`` shows the alert fire, then resolve once the
cluster has healed. On the same scrape, every dashboard panel returns series, and ``make monitoring-up``'s stack
starts and stops beside the cluster.

`make test` runs the first scenario (about a minute); `make test-ha` (PUNCHCLOCK_HA_FULL=1) runs them all.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from punchclock_tools.cluster import control, scale
from punchclock_tools.cluster.faults import Cluster, wait_until
from punchclock_tools.cluster.render import FAILOVER_BUDGET_SECONDS  # the instances' PUNCHCLOCK_FAILOVER_BUDGET_SECONDS
from punchclock_tools.load import Load
from punchclock_tools.monitoring import dashboards, postgres_exporter, stack, targets
from punchclock_tools.monitoring.alerts import matching, wait_firing, wait_resolved
from punchclock_tools.monitoring.prometheus import Prometheus
from punchclock_tools.paths import REPO
from tests.ha.conftest import FULL
from tests.monitoring.conftest import LiveStack

pytestmark = [pytest.mark.ha, pytest.mark.slow]
full_only = pytest.mark.skipif(not FULL, reason="make test-ha runs the full set (PUNCHCLOCK_HA_FULL=1)")
DASHBOARD = REPO / "deploy" / "monitoring" / "dashboards" / "punchclock.json"


def quiet(prom: Prometheus, name: str) -> None:
    """Given ``name`` is not active (a previous scenario's alert has resolved)."""
    wait_resolved(prom, name, 120)


def test_both_replicas_stopped_fires_no_synchronous_standby(settled: Cluster, live_prometheus: Prometheus) -> None:
    """Both standbys stopped: PatroniNoSynchronousStandby fires; both back: it resolves."""
    # Given a healthy cluster and no such alert
    prom, cluster = live_prometheus, settled
    quiet(prom, "PatroniNoSynchronousStandby")
    leader = cluster.wait_leader()
    replicas = [node.name for node in cluster.layout.nodes if node.name != leader]
    # When both replicas are stopped
    stopped = time.monotonic()
    cluster.stop(*replicas)
    # Then the alert fires, naming the cluster's scope
    _, alert = wait_firing(prom, "PatroniNoSynchronousStandby", 90)
    fired = time.monotonic() - stopped
    assert (alert["labels"]["scope"], alert["labels"]["severity"]) == (cluster.layout.scope, "page")
    # When they come back, then it resolves
    started = time.monotonic()
    cluster.start(*replicas)
    wait_resolved(prom, "PatroniNoSynchronousStandby", 180)
    resolved = time.monotonic() - started
    print(f"PatroniNoSynchronousStandby fired {fired:.1f}s after the stop, resolved {resolved:.1f}s after the start")


@full_only
def test_no_standby_pages_once_through_alertmanager(settled: Cluster, live_stack: LiveStack) -> None:
    """Both standbys stopped past the failover budget: Alertmanager pages PatroniNoSynchronousStandby on the page
    receiver while the instances' readiness alerts it causes are suppressed; both back: the page resolves."""
    # Given a healthy cluster, Prometheus notifying a real Alertmanager, no page pending
    prom, cluster, inbox = live_stack.prometheus, settled, live_stack.inbox
    quiet(prom, "PatroniNoSynchronousStandby")
    quiet(prom, "PunchclockInstanceNotReady")
    leader = cluster.wait_leader()
    replicas = [node.name for node in cluster.layout.nodes if node.name != leader]
    # When both standbys stop, and stay stopped past the failover budget (writes held, then instances not ready)
    since = len(inbox.received)
    cluster.stop(*replicas)
    page = inbox.wait_for(
        lambda n: n.path == "/page" and n.status == "firing" and "PatroniNoSynchronousStandby" in n.alertnames, 90
    )
    wait_firing(prom, "PunchclockInstanceNotReady", FAILOVER_BUDGET_SECONDS + 60)
    # Then Alertmanager holds the readiness alerts, suppressed by the database alert, and pages nobody for them
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = {(a["labels"]["alertname"], a["status"]["state"]) for a in live_stack.alertmanager.alerts()}
        if ("PunchclockInstanceNotReady", "suppressed") in states:
            break
        time.sleep(0.5)
    assert ("PatroniNoSynchronousStandby", "active") in states
    assert ("PunchclockInstanceNotReady", "suppressed") in states
    assert ("PunchclockInstanceNotReady", "active") not in states
    # And HAProxy's own exporter shows no replica left for reads
    wait_firing(prom, "HAProxyNoReplicaBackend", 60, {"job": "haproxy", "proxy": "db_read"})
    readiness = {"PunchclockInstanceNotReady", "PunchclockNoReadyInstance"}
    assert [n.alertnames for n in inbox.received[since:] if readiness & set(n.alertnames)] == []
    # When the standbys come back, then the page is resolved on the same receiver
    cluster.start(*replicas)
    inbox.wait_for(
        lambda n: n.path == "/page" and n.status == "resolved" and "PatroniNoSynchronousStandby" in n.alertnames, 180
    )
    assert page.body["commonLabels"]["severity"] == "page"


@full_only
def test_killed_leader_fires_leader_changed(settled: Cluster, live_prometheus: Prometheus) -> None:
    """The leader killed: PatroniLeaderChanged fires once a replica is promoted, and resolves after its window."""
    # Given a healthy cluster with no recent leader change
    prom, cluster = live_prometheus, settled
    quiet(prom, "PatroniLeaderChanged")
    old = cluster.wait_leader()
    # When the leader's machine crashes
    cluster.kill_node(old)
    new = cluster.wait_leader(90, other_than=old)
    # Then the leader-change alert fires
    fired, alert = wait_firing(prom, "PatroniLeaderChanged", 90)
    assert alert["labels"]["scope"] == cluster.layout.scope
    # When the old leader rejoins, then the alert resolves once the promotion leaves its (shortened) window
    cluster.start(old)
    resolved = wait_resolved(prom, "PatroniLeaderChanged", 180)
    assert cluster.wait_leader() == new
    print(f"PatroniLeaderChanged fired {fired:.1f}s after {new} led, resolved after {resolved:.1f}s")


@full_only
def test_database_down_under_load_fires_fast_burn(settled: Cluster, live_prometheus: Prometheus) -> None:
    """Every database node stopped under load: HAProxy's exporter shows no primary (HAProxyNoPrimaryBackend) and
    the POSTs' 503s fire PunchclockAvailabilityBudgetFastBurn (a page); the nodes back: both resolve while the load
    goes on."""
    # Given a healthy cluster under a steady load and no burn alert
    prom, cluster = live_prometheus, settled
    quiet(prom, "PunchclockAvailabilityBudgetFastBurn")
    nodes = [node.name for node in cluster.layout.nodes]
    with Load(cluster.url, workers=8, rate=20.0, max_seconds=480).running() as load:
        load.wait_acknowledged(40, timeout=60)
        # When every database node stops
        load.mark_event()
        cluster.stop(*nodes)
        # Then HAProxy routes writes to no node, as its own exporter shows
        wait_firing(prom, "HAProxyNoPrimaryBackend", 60, {"job": "haproxy", "proxy": "db_write"})
        # And, once held POSTs outlast the failover budget and answer 503, the fast-burn alert pages
        fired, alert = wait_firing(prom, "PunchclockAvailabilityBudgetFastBurn", FAILOVER_BUDGET_SECONDS + 120)
        assert (alert["labels"]["severity"], alert["labels"]["job"]) == ("page", "punchclock")
        assert {failure.status for failure in load.outcome.failures} == {503}
        # When the nodes come back, then POSTs succeed again and the alert resolves
        cluster.start(*nodes)
        wait_until(lambda: cluster.readyz() == 200, 120, "/readyz to turn 200")
        restored = time.monotonic()
        wait_resolved(prom, "HAProxyNoPrimaryBackend", 60)
        load.wait_acknowledged(40, timeout=120)
        resolved = wait_resolved(prom, "PunchclockAvailabilityBudgetFastBurn", 240)
    assert matching(prom, "PunchclockAvailabilityBudgetFastBurn") == []
    print(
        f"PunchclockAvailabilityBudgetFastBurn fired {fired:.1f}s after the stop, resolved"
        f" {time.monotonic() - restored:.1f}s after /readyz turned 200 (waited {resolved:.1f}s)"
    )


@full_only
def test_stopped_instance_fires_haproxy_app_server_down(settled: Cluster, live_prometheus: Prometheus) -> None:
    """One instance stopped: HAProxy's exporter shows it down and HAProxyAppServerDown fires for it (not
    HAProxyNoAppServer: the other carries the load); started again: it resolves."""
    # Given a healthy cluster and no such alert
    prom, cluster = live_prometheus, settled
    quiet(prom, "HAProxyAppServerDown")
    app = cluster.layout.apps[-1].name  # read now: instances can be added and removed at runtime
    # When one instance stops
    stopped = time.monotonic()
    cluster.stop(app)
    # Then HAProxy's backend-down alert fires for that server only
    _, alert = wait_firing(prom, "HAProxyAppServerDown", 90, {"server": app})
    fired = time.monotonic() - stopped
    assert (alert["labels"]["job"], alert["labels"]["proxy"]) == ("haproxy", "apps_live")
    assert matching(prom, "HAProxyNoAppServer") == []
    # When it is started again, then the alert resolves
    started = time.monotonic()
    cluster.start(app)
    resolved = wait_resolved(prom, "HAProxyAppServerDown", 120)
    print(
        f"HAProxyAppServerDown fired {fired:.1f}s after the stop, resolved {time.monotonic() - started:.1f}s after"
        f" the start (waited {resolved:.1f}s)"
    )


def instance_targets(prom: Prometheus, healthy: bool = True) -> set[str]:
    """The punchclock instances Prometheus scrapes (only those whose last scrape worked, with ``healthy``)."""
    found = [t for t in prom.targets() if t["labels"]["job"] == "punchclock"]
    return {t["labels"]["instance"] for t in found if t["health"] == "up" or not healthy}


@full_only
def test_instances_added_and_removed_at_run_time_follow_the_layout(settled: Cluster, live_stack: LiveStack) -> None:
    """An instance added while the cluster serves is scraped once the targets are refreshed from the layout; once
    removed and refreshed again, it is scraped no more."""
    # Given the running instances, all scraped
    prom, cluster = live_stack.prometheus, settled
    before = {f"127.0.0.1:{app.port}" for app in cluster.layout.apps}
    wait_until(lambda: instance_targets(prom) == before, 60, "every instance scraped")
    # When one more instance is added and the targets refreshed, then Prometheus scrapes it too
    added = scale.add(cluster.layout)
    try:
        targets.refresh(cluster.layout, live_stack.targets_dir)
        took = wait_until(lambda: instance_targets(prom) == before | {f"127.0.0.1:{added.port}"}, 60, "it scraped")
    finally:
        # When it is removed and the targets refreshed, then it is no longer scraped
        scale.remove(cluster.layout)
        targets.refresh(cluster.layout, live_stack.targets_dir)
    wait_until(lambda: instance_targets(prom, healthy=False) == before, 60, "it no longer a target")
    print(f"{added.name} scraped {took:.1f}s after the refresh")


def test_postgres_exporters_read_every_node_as_a_monitoring_role(settled: Cluster, live_stack: LiveStack) -> None:
    """Each node's postgres_exporter scrapes cleanly (standbys included) as a role with pg_monitor and no other
    power, and its password is on no command line and in no environment."""
    # Given the exporters beside the cluster
    prom, layout = live_stack.prometheus, settled.layout
    names = sorted(node.name for node in layout.nodes)
    # Then every node is reached, and no query fails on any of them (a standby refuses pg_current_wal_lsn())
    assert sorted(series["metric"]["name"] for series in prom.query("pg_up == 1")) == names
    assert sorted(series["metric"]["name"] for series in prom.query("pg_exporter_last_scrape_error == 0")) == names
    # And the role they log in as may read the statistics views and do nothing else
    attributes = control.leader_psql(
        layout,
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls,"
        f" pg_has_role(rolname, 'pg_monitor', 'MEMBER') FROM pg_roles WHERE rolname = '{postgres_exporter.ROLE}'",
    )
    assert attributes.split("\t") == ["t", "f", "f", "f", "f", "f", "t"]
    # And the password is read from a 0600 file, never passed on a command line or in the environment
    secret_file = postgres_exporter.password_file(layout)
    assert secret_file.stat().st_mode & 0o777 == 0o600
    secret = secret_file.read_text().strip().encode()
    for exporter in (e for e in live_stack.exporters if e.job == "postgres"):
        assert secret not in Path(f"/proc/{exporter.pid}/cmdline").read_bytes()
        assert secret not in Path(f"/proc/{exporter.pid}/environ").read_bytes()


def test_monitoring_up_scrapes_the_cluster_and_reaches_alertmanager(settled: Cluster, tmp_path: Path) -> None:
    """``make monitoring-up``'s stack scrapes every process of the cluster and its exporters and sends to its
    Alertmanager; ``down`` stops every process it started by pid."""
    # Given a cluster, when the monitoring stack starts beside it
    started = stack.up(Path(settled.layout.state_dir), tmp_path)
    try:
        prom = Prometheus(started.prometheus_url, None, tmp_path / "prometheus" / "prometheus.log")
        # Then every Patroni, etcd member, instance, HAProxy and exporter is scraped, and Prometheus has found its
        # Alertmanager
        prom.wait_all_up(60)
        jobs = sorted({target["labels"]["job"] for target in prom.targets()})
        assert jobs == ["etcd", "haproxy", "node", "patroni", "postgres", "punchclock"]
        postgres = [t["labels"].get("name") for t in prom.targets() if t["labels"]["job"] == "postgres"]
        assert sorted(postgres) == sorted(node.name for node in settled.layout.nodes)
        managers = prom.get("/api/v1/alertmanagers")["activeAlertmanagers"]
        assert [manager["url"] for manager in managers] == [f"{started.alertmanager_url}/api/v2/alerts"]
        assert stack.up(Path(settled.layout.state_dir), tmp_path) == started  # a second up reuses it
    finally:
        stack.down(tmp_path)
    # And after down none of its processes runs
    assert not stack.running_program(started.prometheus_pid, "prometheus")
    assert not stack.running_program(started.alertmanager_pid, "prometheus-alertmanager")
    assert [e.program for e in started.exporters if stack.running_program(e.pid, e.program)] == []
    assert len(started.exporters) == len(settled.layout.nodes) + 1


# Counters with a label appear on their first increment: a healthy cluster has no database error to show.
ONLY_AFTER_A_FAULT = ("punchclock_db_errors_total",)


def test_every_dashboard_panel_shows_series_from_the_cluster(settled: Cluster, live_prometheus: Prometheus) -> None:
    """Each query of the dashboard, the database tier's exporters included, returns series from a live scrape of
    the cluster (after some POST /app): no panel is empty on arrival."""
    # Given a cluster that has recorded stamps
    for _ in range(20):
        assert httpx.post(f"{settled.url}/app", timeout=30).status_code == 201
    # Then every panel's query has a series within a few evaluations of the (shortened) rules
    checked = [
        query
        for query in dashboards.queries(DASHBOARD, rate_interval="15s")
        if not any(name in query.expr for name in ONLY_AFTER_A_FAULT)
    ]
    deadline = time.monotonic() + 60
    while empty := [query for query in checked if not live_prometheus.query(query.expr)]:
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    assert [query.panel for query in empty] == [], "\n".join(query.expr for query in empty)
    assert len(checked) > 40
