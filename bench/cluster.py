"""The production topology: the three-node synchronous cluster ``make test-ha`` uses (etcd x3, Patroni and
PostgreSQL x3 with a synchronous standby, HAProxy, two instances), brought up in the run's temporary
directory, measured, and taken down with nothing left running.

Three runs: pgbench's one-row commits through HAProxy's write port (the ceiling of this cluster), ``POST
/app`` through the public balancer, and ``POST /app`` straight to one instance. Each counts the server (both
instances), PostgreSQL (every node's postmaster tree: the leader and the standbys replaying its WAL) and
HAProxy, and checks that every 2xx is a row on the leader.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.measure import Target, http_run, pgbench_run
from bench.model import Measurement
from bench.pgbench import PgTarget
from bench.progress import Step
from bench.rows import RowCount
from bench.settings import BenchSettings
from punchclock_tools.cluster import control, supervisor
from punchclock_tools.cluster.layout import Layout

PGBENCH = "cluster_pgbench_commit"
BALANCED = "cluster_post_app_balancer"
DIRECT = "cluster_post_app_direct"
BRING_UP_SECONDS = 60  # etcd, Patroni's bootstrap and a synchronous standby, the instances: for the ETA only


def steps(settings: BenchSettings, wrk_seconds: int, pgbench_seconds: int) -> list[Step]:
    """The cluster's runs in ``measure``'s order (none when ``BENCH_CLUSTER=0``)."""
    if not settings.cluster:
        return []
    return [
        Step(PGBENCH, pgbench_seconds + BRING_UP_SECONDS),
        Step(BALANCED, wrk_seconds),
        Step(DIRECT, wrk_seconds),
    ]


@contextlib.contextmanager
def running_cluster(state: Path, apps: int = 2, cpu_quota: float | None = None) -> Iterator[Layout]:
    """``control.up`` in ``state``; on the way out every process of the cluster is stopped (by pid) and the
    instances' cgroups removed."""
    try:
        yield control.up(state, apps=apps, cpu_quota=cpu_quota)
    finally:
        if (state / "cluster.json").exists():
            control.down(state)


def leader_rows(layout: Layout) -> RowCount:
    return lambda: int(control.leader_psql(layout, "SELECT count(*) FROM stamps", database=layout.database["name"]))


def _pids(layout: Layout) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(instances, PostgreSQL postmasters, HAProxy), each a tuple of process-tree roots."""
    running = supervisor.processes(layout)
    apps = tuple(pid for app in layout.apps if (pid := running[app.name].pid) is not None)
    postmasters = tuple(pid for node in layout.nodes if (pid := supervisor.postmaster_pid(node.data_dir)))
    haproxy = running["haproxy"].pid
    return apps, postmasters, (haproxy,) if haproxy else ()


def measure(
    settings: BenchSettings, work: Path, log: Path, measured: Callable[[str, str, Callable[[], Measurement]], None]
) -> None:
    """Bring the cluster up, hand each of its three runs to ``measured`` (which announces and records it),
    take the cluster down."""
    conns = settings.connections
    state = work / "cluster"
    state.mkdir()
    with running_cluster(state) as layout:
        apps, postmasters, haproxy = _pids(layout)
        rows = leader_rows(layout)
        db = layout.database
        write_port = PgTarget(layout.haproxy["write_port"], db["password"], db["user"], db["name"])
        measured(
            PGBENCH,
            f"cluster: pgbench one-row INSERT through HAProxy's write port, {conns} clients",
            lambda: pgbench_run(
                PGBENCH, write_port, postmasters, conns, settings, work / "cluster-pgbench", log, rows, haproxy
            ),
        )
        metrics = tuple(f"http://127.0.0.1:{app.port}" for app in layout.apps)
        one = layout.apps[0]
        for name, url, where in (
            (BALANCED, layout.app_url, "through the balancer"),
            (DIRECT, f"http://127.0.0.1:{one.port}", f"straight to one instance ({one.name})"),
        ):
            target = Target(url, apps, metrics, postmasters, haproxy)
            label = f"POST /app, cluster, {where}"
            measured(
                name,
                f"{label}, {conns} connections",
                functools.partial(http_run, name, label, target, "POST", "/app", conns, settings, log, rows),
            )
