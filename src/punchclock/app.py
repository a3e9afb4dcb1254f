"""``create_app(settings)``: the ASGI application, its routes and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from punchclock import problems, startup
from punchclock.api import openapi
from punchclock.api.health import HealthAPI
from punchclock.api.stamps import StampsAPI
from punchclock.lifecycle import Lifecycle
from punchclock.logs import AccessLog
from punchclock.metrics import Metrics
from punchclock.middleware import RequestContext
from punchclock.settings import Settings
from punchclock.store import Store, open_store
from punchclock.writer import Writer

log = structlog.get_logger("punchclock.app")
WRITER_STOP_SECONDS = 2.0  # in-flight requests already waited for their commits during the HTTP drain


def utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    registry: CollectorRegistry | None = None,
    exposition: CollectorRegistry | None = None,
    clock: Callable[[], datetime] = utc_now,
    lifecycle: Lifecycle | None = None,
) -> RequestContext:
    """Build punchclock. Every resource can be handed in; anything not given is made from ``settings``.

    ``registry`` holds the instruments; ``exposition``, when given, is what /metrics renders instead of it: the
    merged metrics of every worker (``punchclock.worker_metrics``)."""
    store = store if store is not None else open_store(settings)
    metrics = Metrics(registry if registry is not None else CollectorRegistry(), exposition)
    lifecycle = lifecycle if lifecycle is not None else Lifecycle()
    writer = Writer(store, settings, metrics)
    access_log = AccessLog()
    lifecycle.on_listener_closed(writer.answer_within)
    metrics.track_pool(store.pool_stats, store.pool_max())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        refresher: asyncio.Task[None] | None = None
        await startup.wait_for_database(store, settings.startup_wait_seconds)
        try:
            if settings.should_migrate_on_start:
                applied = await store.migrate()
                if applied:
                    log.info("applied migrations on start", versions=applied)
            await startup.check_schema(store)
            await writer.start()
            if metrics.shared:
                refresher = asyncio.create_task(metrics.keep_fresh(), name="metrics-refresh")
            log.info("serving", commit_mode=settings.commit_mode.value, store=repr(store))
            yield
        finally:
            lifecycle.draining = True
            if refresher is not None:
                refresher.cancel()
            await writer.stop(WRITER_STOP_SECONDS)
            await store.close()
            access_log.flush()
            log.info("stopped: writer drained and database connections closed")

    stamps = StampsAPI(writer, store, settings, clock)
    app = Starlette(
        routes=[
            *stamps.routes(),
            *HealthAPI(writer, metrics, lifecycle, settings.ready_timeout_seconds).routes(),
            *openapi.ROUTES,
        ],
        exception_handlers=problems.HANDLERS,
        lifespan=lifespan,
    )
    return RequestContext(
        app, metrics, lifecycle, access_log if settings.access_log else None, post_app=stamps.create_asgi
    )
