"""A real cluster for the failure scenarios: its own temporary state directory and free ports, always torn down."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from punchclock_tools import timeline
from punchclock_tools.cluster import control, walfs
from punchclock_tools.cluster.faults import Cluster
from punchclock_tools.cluster.layout import Layout
from punchclock_tools.cluster.watch import SyncWatch
from punchclock_tools.load import Outcome, Verdict, lost_on

FULL = os.environ.get("PUNCHCLOCK_HA_FULL") == "1"
TOOLS = ("etcd", "haproxy", "supervisord", "pgbackrest", "nft")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ha/" in item.nodeid:
            item.add_marker(pytest.mark.timeout(600))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """etcd x3, Patroni x3, HAProxy and two punchclock instances; stopped and deleted even when a test fails."""
    with running_cluster(apps=2) as started:
        yield started


@contextlib.contextmanager
def running_cluster(apps: int, cpu_quota: float | None = None) -> Iterator[Cluster]:
    """A cluster of ``apps`` instances (each under ``cpu_quota`` cores) in a temporary state directory,
    stopped and deleted on the way out; skips the test where the cluster cannot run."""
    if os.geteuid() != 0:
        pytest.skip("the cluster runs PostgreSQL as the postgres user, which needs root")
    missing = [tool for tool in TOOLS if not shutil.which(tool)]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run `make test` or `make test-ha`, which install them")
    state = Path(tempfile.mkdtemp(prefix="punchclock-ha-"))
    try:
        layout = control.up(state, apps=apps, cpu_quota=cpu_quota)
        yield Cluster(layout)
    finally:
        if (state / "cluster.json").exists():
            Cluster(Layout.load(state)).heal()
            keep = os.environ.get("PUNCHCLOCK_HA_KEEP_LOGS")
            if keep:
                shutil.copytree(state / "log", Path(keep) / state.name, dirs_exist_ok=True)
            control.down(state)
            walfs.unmount_all(Layout.load(state))  # a WAL-disk-full scenario that failed before moving back
        shutil.rmtree(state, ignore_errors=True)


@pytest.fixture
def settled(cluster: Cluster) -> Cluster:
    """The cluster healthy again after whatever the previous scenario did."""
    cluster.settle()
    return cluster


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    """Figures a scenario records; shown on the terminal as one line when it ends (``scenario: <Verdict.line()>
    key=value ...``), and appended to $PUNCHCLOCK_HA_REPORT as JSON lines."""
    figures: dict[str, object] = {"scenario": request.node.name}
    yield figures
    verdict = [field.name for field in dataclasses.fields(Verdict)]
    parts = [f"{figures['scenario']}:"]
    if all(name in figures for name in verdict):  # record() put them there from vars(verdict), types and all
        parts.append(Verdict(**{name: figures[name] for name in verdict}).line())  # type: ignore[arg-type]
    shown = {"scenario", *(verdict if len(parts) > 1 else [])}
    line = " ".join(parts + [f"{key}={json.dumps(value)}" for key, value in figures.items() if key not in shown])
    # A print from teardown would be swallowed by pytest's capture: write past it, between pytest's own output.
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is None or capture is None:
        print(line)
    else:
        with capture.global_and_fixture_disabled():
            if request.config.get_verbosity() < 0:
                reporter.write("\n")  # -q writes its dots with no line of their own to end
            reporter.write_line(line)
    target = os.environ.get("PUNCHCLOCK_HA_REPORT")
    if target:
        with open(target, "a") as handle:
            handle.write(json.dumps(figures) + "\n")


def record(report: dict[str, object], verdict: Verdict, outcome: Outcome, **extra: object) -> None:
    """The verdict and the scenario's own figures into ``report``; with $PUNCHCLOCK_HA_KEEP_LOGS set, a PNG of
    the load's answers over time there as <scenario>.png (its path recorded as ``timeline_png``)."""
    statuses = Counter(str(failure.status or "no response") for failure in outcome.failures)
    report.update(vars(verdict), failures_by_status=dict(statuses), **extra)
    report["longest_stall"] = round(verdict.longest_stall, 2)
    report["p99"] = round(verdict.p99, 3)
    keep = os.environ.get("PUNCHCLOCK_HA_KEEP_LOGS")
    if keep:
        # Seconds from the fault to the new leader, as the scenarios that change leader record them: scenario 1
        # and the switchover time it from the fault; the partition from the end of cluster.partition(), a little
        # after the fault, so its mark is early by the time the nft rules took.
        timed = {
            "failover_seconds": "new leader seen",
            "switchover_seconds": "new leader seen",
            "new_elected_seconds": "new leader (from the partition's end)",
        }
        key = next((key for key in timed if isinstance(extra.get(key), int | float)), None)
        change = extra.get(key) if key else None
        name = str(report["scenario"])
        png = timeline.draw(
            timeline.timeline(outcome, float(change) if isinstance(change, int | float) else None),
            Path(keep) / f"{name}.png",
            f"{name}\n{verdict.line()}",
            timed.get(key or "", ""),
        )
        report["timeline_png"] = str(png)


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
