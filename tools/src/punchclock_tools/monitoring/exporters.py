"""The database tier's exporters beside the local cluster: one postgres_exporter per PostgreSQL node (job
``postgres``, labelled with the node's Patroni ``scope`` and ``name``) and one node_exporter for the host (job
``node``), each on a free loopback port, and the Prometheus scrape jobs that read them."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from punchclock_tools.cluster.layout import Layout
from punchclock_tools.monitoring import daemon, node_exporter, postgres_exporter


@dataclass(frozen=True)
class Exporter:
    job: str
    program: str  # the binary, to check a recorded pid still runs it
    address: str  # host:port serving /metrics
    pid: int
    log: str
    labels: dict[str, str] = field(default_factory=dict)


Started = list[tuple[subprocess.Popen[bytes], Exporter]]


def start(layout: Layout, workdir: Path, timeout: float = 30) -> Started:
    """Create the monitoring role if needed, start every exporter and wait until each serves; on a failure,
    stop those already started."""
    password = postgres_exporter.ensure_role(layout)
    started: Started = []
    try:
        for node in layout.nodes:
            log = workdir / f"postgres_exporter-{node.name}.log"
            process, address = postgres_exporter.start(node, password, log)
            labels = {"scope": layout.scope, "name": node.name}
            started.append(
                (process, Exporter("postgres", postgres_exporter.BINARY, address, process.pid, str(log), labels))
            )
        log = workdir / "node_exporter.log"
        process, address = node_exporter.start(log)
        started.append((process, Exporter("node", node_exporter.BINARY, address, process.pid, str(log))))
        for process, exporter in started:
            daemon.wait_ready(f"http://{exporter.address}", process, Path(exporter.log), timeout, path="/")
    except BaseException:
        for process, _ in started:
            daemon.stop(process)
        raise
    return started


@contextlib.contextmanager
def running(layout: Layout, workdir: Path, timeout: float = 30) -> Iterator[list[Exporter]]:
    """Every exporter for the block, stopped by process group afterwards."""
    started = start(layout, workdir, timeout)
    try:
        yield [exporter for _, exporter in started]
    finally:
        for process, _ in started:
            daemon.stop(process)


def scrape_configs(exporters: list[Exporter], interval: str | None = None) -> list[dict[str, Any]]:
    """One scrape job per exporter job name, each target carrying its exporter's labels; with ``interval``, each
    job scraped that often with that timeout, whatever the global settings.

    postgres_exporter 0.11 takes a second to answer when its node is down (it tries to connect twice, a second
    apart): under a 1 s timeout a stopped node would read as a stopped exporter (``up`` 0,
    DatabaseTierTargetDown) instead of ``pg_up`` 0. The live tests, which scrape every second, pass 2 s."""
    jobs: dict[str, list[dict[str, Any]]] = {}
    for exporter in exporters:
        target: dict[str, Any] = {"targets": [exporter.address]}
        if exporter.labels:
            target["labels"] = dict(exporter.labels)
        jobs.setdefault(exporter.job, []).append(target)
    timing = {"scrape_interval": interval, "scrape_timeout": interval} if interval else {}
    return [{"job_name": job, **timing, "static_configs": targets} for job, targets in jobs.items()]
