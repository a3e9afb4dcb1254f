"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from punchclock.lifecycle import Lifecycle
from punchclock.metrics import Metrics
from punchclock.problems import problem
from punchclock.writer import Writer

log = structlog.get_logger("punchclock.health")


class HealthAPI:
    def __init__(self, writer: Writer, metrics: Metrics, lifecycle: Lifecycle, timeout: float) -> None:
        self.writer = writer
        self.metrics = metrics
        self.lifecycle = lifecycle
        self.timeout = timeout
        self._last_ready: bool | None = None
        self._last_writable: bool | None = None

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/readyz/database", self.database, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
        ]

    async def healthz(self, request: Request) -> Response:
        """Alive: the event loop answers. Never touches the database."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(self, request: Request) -> Response:
        """Ready to take stamps: not draining, and the database took a write less than a failover budget ago.

        A database failover therefore does not empty a balancer or a Kubernetes Service: during it every
        instance stays ready and holds the stamps it receives until a new leader commits them, as the failover
        budget promises. An instance leaves when it drains, or once the database has been away longer than the
        budget, when it fails stamps fast anyway. ``/readyz/database`` tells whether the database takes writes
        right now."""
        if self.lifecycle.draining:
            self._record("draining: shutting down")
            return problem(503, "draining: shutting down", {"Retry-After": "1"})
        writable = await self._writable()
        if writable or self.writer.wrote_within_budget():
            self._record(None)
            return Response(b'{"status":"ready"}', media_type="application/json")
        reason = f"the database has taken no write for over {self.writer.budget:g} s (the failover budget)"
        self._record(reason)
        return problem(503, "the database cannot take writes right now", {"Retry-After": "1"})

    async def database(self, request: Request) -> Response:
        """Whether the database takes a write right now (a replicated commit within the bound), for people and
        for alerts; the driver's words stay in the log."""
        if await self._writable():
            return Response(b'{"status":"writable"}', media_type="application/json")
        return problem(503, "the database cannot take writes right now", {"Retry-After": "1"})

    async def _writable(self) -> bool:
        """The writer's shared write check, bounded by the readiness timeout; its outcome is a metric."""
        reason = None
        try:
            await asyncio.wait_for(self.writer.check_writable(), timeout=self.timeout)
        except TimeoutError:
            reason = f"the database did not answer a write check within {self.timeout:g} s"
        except Exception as exc:
            reason = f"the database cannot take writes: {exc}"
        self.metrics.database_writable.set(int(reason is None))
        if (reason is None) != self._last_writable:
            log.info("database takes writes" if reason is None else "database cannot take writes", reason=reason)
            self._last_writable = reason is None
        return reason is None

    def _record(self, reason: str | None) -> None:
        ready = reason is None
        self.metrics.ready.set(int(ready))
        if ready != self._last_ready:
            log.info("ready" if ready else "not ready", reason=reason)
            self._last_ready = ready

    async def metrics_page(self, request: Request) -> Response:
        """Every worker's metrics; this worker's sampled gauges are written first, so they are current."""
        self.metrics.refresh()
        return Response(generate_latest(self.metrics.exposition), media_type=CONTENT_TYPE_LATEST)
