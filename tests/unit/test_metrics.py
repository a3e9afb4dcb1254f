"""The instruments of one process: what /metrics renders when punchclock serves alone."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Info, generate_latest

from punchclock import __version__
from punchclock.metrics import Metrics


def lines(registry: CollectorRegistry, name: str) -> list[str]:
    return [line for line in generate_latest(registry).decode().splitlines() if name in line]


def samples(registry: CollectorRegistry, name: str) -> list[str]:
    return [line for line in lines(registry, name) if line.startswith(name)]


def test_build_info_renders_as_the_info_metric_did() -> None:
    """punchclock_build_info, a gauge so that several workers can export it, is the same text an Info gave."""
    info = CollectorRegistry()
    Info("punchclock_build", "punchclock version", registry=info).info({"version": __version__})
    assert lines(Metrics(CollectorRegistry()).registry, "punchclock_build_info") == lines(info, "punchclock_build_info")


def test_one_process_reads_sampled_gauges_at_the_scrape() -> None:
    """Alone, a sampled gauge shows its function's value at each scrape, with no refresh and no pid label."""
    metrics = Metrics(CollectorRegistry())
    depth = [3]
    metrics.sample(metrics.queue_depth, lambda: depth[0])
    first = samples(metrics.exposition, "punchclock_queue_depth")
    depth[0] = 7
    assert (first, samples(metrics.exposition, "punchclock_queue_depth")) == (
        ["punchclock_queue_depth 3.0"],
        ["punchclock_queue_depth 7.0"],
    )
