"""Debian's Prometheus scraping a real local cluster, with the production rules shortened by code
(punchclock_tools.monitoring.rules), so an alert meant for minutes fires within seconds of a real failure."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from punchclock_tools.cluster.faults import Cluster
from punchclock_tools.monitoring import (
    alertmanager,
    exporters,
    node_exporter,
    postgres_exporter,
    prometheus,
    rules,
    targets,
    webhook,
)
from punchclock_tools.paths import REPO
from tests.ha.conftest import cluster, settled  # noqa: F401 - the tests/ha cluster, reused as fixtures here

RULE_FILES = sorted((REPO / "deploy" / "monitoring" / "rules").glob("*.yml"))
ALERTMANAGER_CONFIG = REPO / "deploy" / "monitoring" / "alertmanager.yml"
# Every duration of the rules divided by 30: a 1m `for:` lasts 2 s, the SLOs' 1h window 2 min, the leader-change
# window (15m) 30 s. Scraped and evaluated every second, so a 5 s range still holds several samples.
SHORTENING = rules.Shortening(factor=30, floor=5)
SCRAPE = prometheus.ScrapeSettings(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
EXPORTER_SCRAPE = "2s"  # postgres_exporter needs a second to say its node is down (exporters.scrape_configs)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/monitoring/test_live_alerts.py" in item.nodeid:
            item.add_marker(pytest.mark.timeout(600))


@dataclass
class LiveStack:
    prometheus: prometheus.Prometheus
    alertmanager: alertmanager.Alertmanager
    inbox: webhook.Inbox
    exporters: list[exporters.Exporter]
    targets_dir: Path  # the cluster's targets, for targets.refresh after the instances change


def alertmanager_config(workdir: Path, inbox_url: str) -> Path:
    """The production Alertmanager configuration, its receivers' webhooks pointed at ``inbox_url`` (same paths)."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = inbox_url + "/" + hook["url"].rsplit("/", 1)[1]
    target = workdir / "alertmanager.yml"
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target


@pytest.fixture(scope="module")
def live_stack(cluster: Cluster) -> Iterator[LiveStack]:  # noqa: F811 - the imported fixture
    """Prometheus on a free loopback port scraping every Patroni, etcd member, punchclock instance and HAProxy of
    the cluster, and a postgres_exporter per node and a node_exporter started here, with the shortened rules,
    notifying a real Alertmanager (the production configuration, its webhooks pointed at a receiver that keeps
    what it is sent); all stopped and their directories deleted afterwards."""
    binaries = (prometheus.BINARY, alertmanager.BINARY, postgres_exporter.BINARY, node_exporter.BINARY)
    missing = [binary for binary in binaries if shutil.which(binary) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (make test installs them)")
    workdir = Path(tempfile.mkdtemp(prefix="punchclock-prometheus-"))
    try:
        files = rules.write_shortened(RULE_FILES, workdir / "rules", SHORTENING)
        with (
            exporters.running(cluster.layout, workdir / "exporters") as started,
            webhook.receiving() as inbox,
            alertmanager.running(workdir / "alertmanager", alertmanager_config(workdir, inbox.url)) as manager,
        ):
            settings = dataclasses.replace(SCRAPE, alertmanagers=(manager.url.removeprefix("http://"),))
            jobs = targets.scrape_configs(cluster.layout, workdir / "targets")
            jobs += exporters.scrape_configs(started, interval=EXPORTER_SCRAPE)
            document = prometheus.config({}, files, settings, jobs)
            with prometheus.running(workdir / "prometheus", document) as server:
                server.wait_all_up(60)
                yield LiveStack(server, manager, inbox, started, workdir / "targets")
                keep = os.environ.get("PUNCHCLOCK_HA_KEEP_LOGS")
                if keep:
                    shutil.copy(server.log, Path(keep) / "prometheus.log")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def live_prometheus(live_stack: LiveStack) -> prometheus.Prometheus:
    return live_stack.prometheus
