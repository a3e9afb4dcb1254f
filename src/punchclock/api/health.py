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

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
        ]

    async def healthz(self, request: Request) -> Response:
        """Alive: the event loop answers. Never touches the database."""
        return Response(b'{"status":"ok"}', media_type="application/json")

    async def readyz(self, request: Request) -> Response:
        """Ready: not draining, and the database takes writes within the bound. The answer says which of the two
        failed; the driver's words (hosts, ports) go to the log only."""
        reason = detail = None
        if self.lifecycle.draining:
            reason = detail = "draining: shutting down"
        else:
            try:
                await asyncio.wait_for(self.writer.check_writable(), timeout=self.timeout)
            except TimeoutError:
                reason = f"the database did not answer a write check within {self.timeout:g} s"
            except Exception as exc:
                reason = f"the database cannot take writes: {exc}"
            detail = reason and "the database cannot take writes right now"
        self._record(reason)
        if detail:
            return problem(503, detail, {"Retry-After": "1"})
        return Response(b'{"status":"ready"}', media_type="application/json")

    def _record(self, reason: str | None) -> None:
        ready = reason is None
        self.metrics.ready.set(int(ready))
        if ready != self._last_ready:
            log.info("ready" if ready else "not ready", reason=reason)
            self._last_ready = ready

    async def metrics_page(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)
