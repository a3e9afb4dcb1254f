"""Prometheus instruments. Built on a registry handed in, so every test and every app has its own.

One process renders its own ``registry`` on /metrics. Several workers (``PUNCHCLOCK_WORKERS`` > 1) each write
their instruments to files (prometheus_client's multiprocess mode, ``punchclock.worker_metrics``) and /metrics
renders an ``exposition`` registry that merges every worker's files: counters and histograms add up across
workers, and each gauge says in its ``multiprocess_mode`` how the workers' values combine (ignored by a single
process). A gauge read from a function at the scrape cannot be read across processes, so with several workers
``refresh`` writes it instead, every ``REFRESH_SECONDS`` and before each scrape.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from punchclock import __version__

log = structlog.get_logger("punchclock.metrics")

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
REFRESH_SECONDS = 1.0  # how stale another worker's queue depth and pool gauges may be at a scrape


class Metrics:
    def __init__(self, registry: CollectorRegistry, exposition: CollectorRegistry | None = None) -> None:
        self.registry = registry
        self.exposition = exposition if exposition is not None else registry  # what /metrics renders
        self.shared = exposition is not None  # several workers: function gauges are written by refresh()
        self._sampled: list[tuple[Gauge, Callable[[], float]]] = []
        self.requests = Counter(
            "punchclock_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "punchclock_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.stamps_committed = Counter(
            "punchclock_stamps_committed", "Stamps durably committed by this process", registry=registry
        )
        self.batch_size = Histogram(
            "punchclock_commit_batch_size",
            "Stamps per committed transaction",
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.commit_latency = Histogram(
            "punchclock_commit_duration_seconds",
            "Time for one batch's transaction to commit",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        # Each worker has its own pool: the instance holds the sum.
        self.pool_size = Gauge(
            "punchclock_pool_size", "Database connections open", registry=registry, multiprocess_mode="livesum"
        )
        self.pool_in_use = Gauge(
            "punchclock_pool_in_use", "Database connections in use", registry=registry, multiprocess_mode="livesum"
        )
        # The pool opens connections on demand and closes idle ones: saturation is in use over this, not over open.
        self.pool_max = Gauge(
            "punchclock_pool_max",
            "Database connections the pool may open (PUNCHCLOCK_POOL_SIZE)",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.db_errors = Counter(
            "punchclock_db_errors",
            "Database failures by kind (transient, error, queue_full)",
            ["kind"],
            registry=registry,
        )
        self.write_retries = Counter(
            "punchclock_write_retries", "Batches retried after an unknown commit outcome", registry=registry
        )
        # Each worker has its own queue, full at its own maximum: one series per worker (a pid label), so
        # depth / max says how near the fullest one is to answering 503.
        self.queue_depth = Gauge(
            "punchclock_queue_depth", "Stamps waiting for a commit", registry=registry, multiprocess_mode="liveall"
        )
        self.queue_max = Gauge(
            "punchclock_queue_max",
            "Stamps the write queue holds before POSTs get 503 (PUNCHCLOCK_QUEUE_MAX)",
            registry=registry,
            multiprocess_mode="liveall",
        )
        # Readiness probes reach one worker or another: the instance reports the latest check's outcome.
        self.ready = Gauge(
            "punchclock_ready",
            "1 when the last readiness check passed: not draining, and the database took a write within the "
            "failover budget",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        self.database_writable = Gauge(
            "punchclock_database_writable",
            "1 when the last write check passed (a replicated commit)",
            registry=registry,
            multiprocess_mode="livemostrecent",
        )
        # A gauge, not an Info (which multiprocess mode lacks); the text exposition of both is the same line.
        Gauge(
            "punchclock_build_info", "punchclock version", ["version"], registry=registry, multiprocess_mode="livemax"
        ).labels(__version__).set(1)

    def observe_commit(self, batch: int, seconds: float, created: int) -> None:
        self.batch_size.observe(batch)
        self.commit_latency.observe(seconds)
        self.stamps_committed.inc(created)

    def track_pool(self, stats: Callable[[], tuple[int, int]], maximum: int) -> None:
        self.pool_max.set(maximum)
        self.sample(self.pool_size, lambda: stats()[0])
        self.sample(self.pool_in_use, lambda: stats()[1])

    def sample(self, gauge: Gauge, read: Callable[[], float]) -> None:
        """``gauge`` shows ``read()``: computed at the scrape in one process, written by ``refresh`` when shared."""
        if self.shared:
            self._sampled.append((gauge, read))
            gauge.set(read())
        else:
            gauge.set_function(read)

    def refresh(self) -> None:
        """Write the sampled gauges' current values (a no-op for one process, which reads them at the scrape)."""
        for gauge, read in self._sampled:
            gauge.set(read())

    async def keep_fresh(self) -> None:
        """Refresh every ``REFRESH_SECONDS`` until cancelled; only shared metrics need it."""
        while True:
            try:
                self.refresh()
            except Exception:  # a failed read must not stop the refreshing; the next one may succeed
                log.exception("could not refresh the shared metrics")
            await asyncio.sleep(REFRESH_SECONDS)
