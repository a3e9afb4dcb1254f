"""What Prometheus scrapes on the local cluster, read from its Layout, under the job names the rules select.

The targets are files Prometheus discovers (``file_sd_configs``) and re-reads when they change, so instances
added or removed at run time (``make cluster-scale``) are scraped, or no longer, once ``refresh`` rewrites them
from the layout: ``make monitoring-up`` on a running stack does, and so does ``python -m
punchclock_tools.monitoring refresh``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from punchclock_tools.cluster.layout import Layout

REFRESH_INTERVAL = "5s"  # Prometheus also watches the files; this bounds a missed change


def cluster_jobs(layout: Layout) -> dict[str, list[str]]:
    """Patroni's REST API, etcd's client URL, each punchclock instance and HAProxy's stats port (its built-in
    Prometheus exporter), all serving ``/metrics``. Read at each call: instances come and go at runtime."""
    return {
        "patroni": [f"127.0.0.1:{node.rest_port}" for node in layout.nodes],
        "etcd": [f"127.0.0.1:{member.client_port}" for member in layout.etcd],
        "punchclock": [f"127.0.0.1:{app.port}" for app in layout.apps],
        "haproxy": [f"127.0.0.1:{layout.haproxy['stats_port']}"],
    }


def refresh(layout: Layout, directory: Path) -> dict[str, list[str]]:
    """Write each job's targets to ``directory``/<job>.json as the layout lists them now; returns them. Each file
    is replaced whole (written beside, then renamed), so Prometheus never reads half of one."""
    directory.mkdir(parents=True, exist_ok=True)
    jobs = cluster_jobs(layout)
    for job, found in jobs.items():
        path = directory / f"{job}.json"
        partial = path.with_name(f".{job}.json.partial")
        partial.write_text(json.dumps([{"targets": found}]) + "\n")
        partial.replace(path)
    return jobs


def scrape_configs(layout: Layout, directory: Path) -> list[dict[str, Any]]:
    """The cluster's scrape jobs, their targets written to ``directory`` and discovered from there."""
    jobs = refresh(layout, directory)
    return [
        {
            "job_name": job,
            "file_sd_configs": [{"files": [str(directory / f"{job}.json")], "refresh_interval": REFRESH_INTERVAL}],
        }
        for job in jobs
    ]
