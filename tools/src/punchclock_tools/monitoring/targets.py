"""What Prometheus scrapes on the local cluster, read from its Layout, under the job names the rules select."""

from __future__ import annotations

from punchclock_tools.cluster.layout import Layout


def cluster_jobs(layout: Layout) -> dict[str, list[str]]:
    """Patroni's REST API, etcd's client URL and each punchclock instance, all serving ``/metrics``."""
    return {
        "patroni": [f"127.0.0.1:{node.rest_port}" for node in layout.nodes],
        "etcd": [f"127.0.0.1:{member.client_port}" for member in layout.etcd],
        "punchclock": [f"127.0.0.1:{app.port}" for app in layout.apps],
    }
