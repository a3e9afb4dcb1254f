"""A real cluster for the failure scenarios: its own temporary state directory and free ports, always torn down."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from deploy.cluster import lifecycle
from deploy.cluster.layout import Layout

from tests.ha.cluster import Cluster, SyncWatch
from tests.ha.load import Outcome, Verdict, lost_on

FULL = os.environ.get("PUNCHCLOCK_HA_FULL") == "1"
TOOLS = ("etcd", "haproxy", "supervisord", "pgbackrest", "nft")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ha/" in item.nodeid:
            item.add_marker(pytest.mark.timeout(600))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """etcd x3, Patroni x3, HAProxy and two punchclock instances; stopped and deleted even when a test fails."""
    if os.geteuid() != 0:
        pytest.skip("the cluster runs PostgreSQL as the postgres user, which needs root")
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run `make test` or `make test-ha`, which install them")
    state = Path(tempfile.mkdtemp(prefix="punchclock-ha-"))
    try:
        layout = lifecycle.up(state, apps=2)
        yield Cluster(layout)
    finally:
        if (state / "cluster.json").exists():
            Cluster(Layout.load(state)).heal()
            keep = os.environ.get("PUNCHCLOCK_HA_KEEP_LOGS")
            if keep:
                shutil.copytree(state / "log", Path(keep) / state.name, dirs_exist_ok=True)
            lifecycle.down(state, purge=True)
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def settled(cluster: Cluster) -> Cluster:
    """The cluster healthy again after whatever the previous scenario did."""
    cluster.settle()
    return cluster


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """Figures a scenario records; printed, and appended to $PUNCHCLOCK_HA_REPORT as JSON lines."""
    figures: dict[str, object] = {"scenario": request.node.name}
    yield figures
    print(json.dumps(figures))
    target = os.environ.get("PUNCHCLOCK_HA_REPORT")
    if target:
        with open(target, "a") as handle:
            handle.write(json.dumps(figures) + "\n")


def record(report: dict[str, object], verdict: Verdict, outcome: Outcome, **extra: object) -> None:
    statuses = Counter(str(failure.status or "no response") for failure in outcome.failures)
    report.update(vars(verdict), failures_by_status=dict(statuses), **extra)
    report["longest_stall"] = round(verdict.longest_stall, 2)
    report["p99"] = round(verdict.p99, 3)


def check_promise(report: dict[str, object], cluster: Cluster, watch: SyncWatch, outcome: Outcome) -> None:
    """The promise behind a 201, recorded then asserted: every acknowledged stamp is on every node that answers,
    and none was acknowledged while a primary named no synchronous standby."""
    lost = lost_on(outcome, {node.name: cluster.node_dsn(node.name) for node in cluster.layout.nodes})
    acked = watch.acked_unprotected([receipt.acked_at for receipt in outcome.receipts])
    report.update(
        lost_by_node=lost,
        acked_without_sync_standby=acked,
        no_sync_standby_seconds=round(watch.unprotected_seconds(), 2),
        most_primaries_at_once=watch.most_primaries,
        slowest_check_ms=dict(sorted(watch.check_ms.items())),
        watch_polls=watch.polls,
        watch_error=watch.error,
    )
    assert watch.error is None, watch.error
    assert watch.polls > 0
    assert [name for name, count in lost.items() if count] == [], lost
    assert acked == 0, watch.unprotected
