"""Debian's Prometheus scraping a real local cluster, with the production rules shortened by code
(punchclock_tools.monitoring.rules), so an alert meant for minutes fires within seconds of a real failure."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from punchclock_tools.cluster.faults import Cluster
from punchclock_tools.monitoring import prometheus, rules, targets
from punchclock_tools.paths import REPO
from tests.ha.conftest import cluster, settled  # noqa: F401 - the tests/ha cluster, reused as fixtures here

RULE_FILES = sorted((REPO / "deploy" / "monitoring" / "rules").glob("*.yml"))
# Every duration of the rules divided by 30: a 1m `for:` lasts 2 s, the SLOs' 1h window 2 min, the leader-change
# window (15m) 30 s. Scraped and evaluated every second, so a 5 s range still holds several samples.
SHORTENING = rules.Shortening(factor=30, floor=5)
SCRAPE = prometheus.ScrapeSettings(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/monitoring/test_live_alerts.py" in item.nodeid:
            item.add_marker(pytest.mark.timeout(600))


@pytest.fixture(scope="module")
def live_prometheus(cluster: Cluster) -> Iterator[prometheus.Prometheus]:  # noqa: F811 - the imported fixture
    """Prometheus on a free loopback port scraping every Patroni, etcd member and punchclock instance of the
    cluster, with the shortened rules; killed by process group and its data directory deleted afterwards."""
    if shutil.which(prometheus.BINARY) is None:
        pytest.skip("prometheus is not installed (Debian package prometheus; make test installs it)")
    workdir = Path(tempfile.mkdtemp(prefix="punchclock-prometheus-"))
    try:
        files = rules.write_shortened(RULE_FILES, workdir / "rules", SHORTENING)
        document = prometheus.config(targets.cluster_jobs(cluster.layout), files, SCRAPE)
        with prometheus.running(workdir, document) as server:
            server.wait_all_up(60)
            yield server
            keep = os.environ.get("PUNCHCLOCK_HA_KEEP_LOGS")
            if keep:
                shutil.copy(server.log, Path(keep) / "prometheus.log")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
