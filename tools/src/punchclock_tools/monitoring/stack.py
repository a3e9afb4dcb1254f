"""``make monitoring-up``: the database tier's exporters, Prometheus and Alertmanager on loopback beside a running
``make cluster-up`` cluster, with the production rules and Alertmanager configuration, left running until
``make monitoring-down``.

What runs is written to ``<state>/monitoring.json`` (pids and URLs); ``down`` stops each process group by its pid,
after checking the pid still runs that program.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from punchclock_tools.cluster.layout import Layout
from punchclock_tools.monitoring import alertmanager, daemon, exporters, prometheus, rules, targets
from punchclock_tools.paths import REPO

MONITORING = REPO / "deploy" / "monitoring"
RULE_FILES = sorted((MONITORING / "rules").glob("*.yml"))
ALERTMANAGER_CONFIG = MONITORING / "alertmanager.yml"


@dataclass
class Stack:
    prometheus_pid: int
    prometheus_url: str
    alertmanager_pid: int
    alertmanager_url: str
    exporters: list[exporters.Exporter] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [
            f"Prometheus    {self.prometheus_url}/alerts  (targets: {self.prometheus_url}/targets)",
            f"Alertmanager  {self.alertmanager_url}/#/alerts",
            *(
                f"exporter      http://{e.address}/metrics  (job {e.job}{' ' + e.labels['name'] if e.labels else ''})"
                for e in self.exporters
            ),
        ]


def state_file(workdir: Path) -> Path:
    return workdir / "monitoring.json"


def targets_dir(workdir: Path) -> Path:
    return workdir / "targets"


def running_program(pid: int, program: str) -> bool:
    """Process ``pid`` runs and is ``program`` (a pid reused by something else is left alone)."""
    with contextlib.suppress(OSError):
        return Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()).name == Path(program).name
    return False


def load(workdir: Path) -> Stack | None:
    path = state_file(workdir)
    if not path.exists():
        return None
    raw = json.loads(path.read_text())
    return Stack(**{**raw, "exporters": [exporters.Exporter(**e) for e in raw.get("exporters", [])]})


def running(workdir: Path) -> Stack | None:
    """The stack recorded in ``workdir`` if its Prometheus still runs."""
    existing = load(workdir)
    return existing if existing and running_program(existing.prometheus_pid, prometheus.BINARY) else None


def up(cluster_state: Path, workdir: Path, shortening: rules.Shortening | None = None) -> Stack:
    """Start the exporters and Alertmanager, then Prometheus scraping the cluster of ``cluster_state`` and them,
    notifying that Alertmanager. On a stack already running, rewrite its targets from the layout instead."""
    if not (cluster_state / "cluster.json").exists():
        raise SystemExit(f"no cluster in {cluster_state}: run `make cluster-up` first")
    layout = Layout.load(cluster_state)
    existing = running(workdir)
    if existing:
        targets.refresh(layout, targets_dir(workdir))  # instances added or removed since
        return existing
    workdir.mkdir(parents=True, exist_ok=True)
    rule_files = rules.write_shortened(RULE_FILES, workdir / "rules", shortening) if shortening else RULE_FILES
    started = exporters.start(layout, workdir / "exporters")
    processes = [process for process, _ in started]
    try:
        manager, manager_url = alertmanager.start(workdir / "alertmanager", ALERTMANAGER_CONFIG)
        processes.append(manager)
        daemon.wait_ready(manager_url, manager, workdir / "alertmanager" / "alertmanager.log", 30)
        settings = prometheus.ScrapeSettings(
            scrape_interval="5s", evaluation_interval="5s", alertmanagers=(manager_url.removeprefix("http://"),)
        )
        found = [exporter for _, exporter in started]
        jobs = targets.scrape_configs(layout, targets_dir(workdir)) + exporters.scrape_configs(found)
        document = prometheus.config({}, rule_files, settings, extra_scrape_configs=jobs)
        server, server_url = prometheus.start(workdir / "prometheus", document)
        processes.append(server)
        daemon.wait_ready(server_url, server, workdir / "prometheus" / "prometheus.log", 60)
    except BaseException:
        for process in processes:
            daemon.stop(process)
        raise
    for process in processes:
        daemon.detach(process)
    stack = Stack(server.pid, server_url, manager.pid, manager_url, found)
    state_file(workdir).write_text(json.dumps(asdict(stack), indent=2) + "\n")
    return stack


def down(workdir: Path) -> list[str]:
    """Stop what ``up`` started, by pid; returns one sentence per process."""
    stack = load(workdir)
    if stack is None:
        return [f"nothing started from {workdir}"]
    notes = []
    for name, pid, program in (
        ("Prometheus", stack.prometheus_pid, prometheus.BINARY),
        ("Alertmanager", stack.alertmanager_pid, alertmanager.BINARY),
        *((f"{e.program} ({e.address})", e.pid, e.program) for e in stack.exporters),
    ):
        if running_program(pid, program):
            daemon.stop_group(pid)
            notes.append(f"stopped {name} (pid {pid})")
        else:
            notes.append(f"{name} (pid {pid}) was not running")
    os.unlink(state_file(workdir))
    return notes
