"""Alertmanager's configuration routes pages and tickets apart, and a database outage pages once: checked with
amtool and on a real Alertmanager sent the alerts that outage raises."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from punchclock_tools.monitoring import alertmanager
from tests.monitoring.conftest import RULE_FILES

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "alertmanager.yml"
ALERTS = {
    r["alert"]: r
    for p in RULE_FILES
    for g in yaml.safe_load(p.read_text())["groups"]
    for r in g["rules"]
    if "alert" in r
}

pytestmark = pytest.mark.skipif(
    shutil.which(alertmanager.AMTOOL) is None or shutil.which(alertmanager.BINARY) is None,
    reason="prometheus-alertmanager is not installed (make test installs it)",
)


def test_config_passes_amtool_check() -> None:
    """amtool accepts the configuration: routes, inhibitions and receivers."""
    proc = subprocess.run(
        [alertmanager.AMTOOL, "check-config", str(CONFIG)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_routes_by_its_severity(name: str) -> None:
    """Each alert of the rule files reaches the pager if its severity is page, the ticket queue otherwise."""
    severity = ALERTS[name]["labels"]["severity"]
    expected = ["page"] if severity == "page" else ["ticket"]
    assert alertmanager.route_receivers(CONFIG, {"alertname": name, "severity": severity, "job": "x"}) == expected


def test_every_inhibition_names_alerts_that_exist() -> None:
    """The inhibit rules' alert names are alerts of the rule files, so a renamed alert cannot silently page twice."""
    config = yaml.safe_load(CONFIG.read_text())
    for rule in config["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            label, value = re.fullmatch(r'(\w+)=~?"(.*)"', matcher).groups()  # type: ignore[union-attr]
            assert label == "alertname", matcher
            assert set(value.split("|")) <= ALERTS.keys(), matcher


def test_database_outage_pages_once(tmp_path: Path) -> None:
    """Given the alerts a database outage raises on two instances, then only the database alert stays active: the
    instances' readiness, no-ready-instance, full-queue and busy-pool alerts are inhibited by it."""
    outage = [
        {"alertname": "PatroniNoLeader", "severity": "page", "job": "patroni", "scope": "punchclock"},
        {"alertname": "PunchclockNoReadyInstance", "severity": "page", "job": "punchclock"},
        {"alertname": "PunchclockInstanceNotReady", "severity": "warning", "job": "punchclock", "instance": "a:8000"},
        {"alertname": "PunchclockInstanceNotReady", "severity": "warning", "job": "punchclock", "instance": "b:8000"},
        {"alertname": "PunchclockWriteQueueNearFull", "severity": "warning", "job": "punchclock", "instance": "a:8000"},
        {"alertname": "PunchclockPoolSaturated", "severity": "warning", "job": "punchclock", "instance": "b:8000"},
        {"alertname": "PunchclockInstanceDown", "severity": "warning", "job": "punchclock", "instance": "c:8000"},
    ]
    with alertmanager.running(tmp_path, CONFIG) as manager:
        manager.post([{"labels": labels, "annotations": {"summary": "test"}} for labels in outage])
        deadline = time.monotonic() + 20
        while True:  # inhibitions are evaluated when the alerts are listed; wait until all have arrived
            states = {
                (a["labels"]["alertname"], a["labels"].get("instance", "")): a["status"]["state"]
                for a in manager.alerts()
            }
            if len(states) == len(outage) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert states == {
        ("PatroniNoLeader", ""): "active",
        ("PunchclockNoReadyInstance", ""): "suppressed",
        ("PunchclockInstanceNotReady", "a:8000"): "suppressed",
        ("PunchclockInstanceNotReady", "b:8000"): "suppressed",
        ("PunchclockWriteQueueNearFull", "a:8000"): "suppressed",
        ("PunchclockPoolSaturated", "b:8000"): "suppressed",
        ("PunchclockInstanceDown", "c:8000"): "active",  # a scrape failure is not the database's doing
    }
