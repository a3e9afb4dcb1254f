"""Prometheus instruments. Built on a registry handed in, so every test and every app has its own."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from punchclock import __version__

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "punchclock_http_requests",
            "HTTP requests answered",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "punchclock_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["route"],
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
        self.pool_size = Gauge("punchclock_pool_size", "Database connections open", registry=registry)
        self.pool_in_use = Gauge("punchclock_pool_in_use", "Database connections in use", registry=registry)
        self.db_errors = Counter(
            "punchclock_db_errors",
            "Database failures by kind (transient, error, queue_full)",
            ["kind"],
            registry=registry,
        )
        self.write_retries = Counter(
            "punchclock_write_retries", "Batches retried after an unknown commit outcome", registry=registry
        )
        self.queue_depth = Gauge("punchclock_queue_depth", "Stamps waiting for a commit", registry=registry)
        self.ready = Gauge(
            "punchclock_ready",
            "1 when the last readiness check passed: not draining, and the database took a write within the "
            "failover budget",
            registry=registry,
        )
        self.database_writable = Gauge(
            "punchclock_database_writable",
            "1 when the last write check passed (a replicated commit)",
            registry=registry,
        )
        Info("punchclock_build", "punchclock version", registry=registry).info({"version": __version__})

    def observe_commit(self, batch: int, seconds: float, created: int) -> None:
        self.batch_size.observe(batch)
        self.commit_latency.observe(seconds)
        self.stamps_committed.inc(created)

    def track_pool(self, stats: Callable[[], tuple[int, int]]) -> None:
        self.pool_size.set_function(lambda: stats()[0])
        self.pool_in_use.set_function(lambda: stats()[1])
