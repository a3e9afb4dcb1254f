"""What Prometheus scrapes on the local cluster, read from its Layout, under the job names the rules select."""

from __future__ import annotations

from punchclock_tools.cluster.layout import Layout


def cluster_jobs(layout: Layout) -> dict[str, list[str]]:
    """Patroni's REST API, etcd's client URL, each punchclock instance and HAProxy's stats port (its built-in
    Prometheus exporter), all serving ``/metrics``. Read at each call: instances come and go at runtime."""
    return {
        "patroni": [f"127.0.0.1:{node.rest_port}" for node in layout.nodes],
        "etcd": [f"127.0.0.1:{member.client_port}" for member in layout.etcd],
        "punchclock": [f"127.0.0.1:{app.port}" for app in layout.apps],
        "haproxy": [f"127.0.0.1:{layout.haproxy['stats_port']}"],
    }
