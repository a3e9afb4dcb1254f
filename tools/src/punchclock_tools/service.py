"""Run punchclock in-process on a real socket, for tests that speak HTTP to it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from punchclock.app import create_app
from punchclock.lifecycle import Lifecycle
from punchclock.settings import Settings
from punchclock_tools.ports import free_port


def settings_for(database_url: str, **overrides: Any) -> Settings:
    """Settings for a test service: quiet, quick to give up at start-up, and patient with a busy machine."""
    # A read gets as long as a readiness check (5 s here, 1 s by default): a loaded machine (CI beside other
    # suites) can take over a second to hand out a pooled connection after a burst of 1,000 POSTs.
    values: dict[str, Any] = {
        "access_log": False,
        "startup_wait_seconds": 5,
        "failover_budget_seconds": 60,
        "ready_timeout_seconds": 5,
    }
    return Settings(database_url=SecretStr(database_url), **{**values, **overrides})


@contextlib.asynccontextmanager
async def serving(settings: Settings, lifecycle: Lifecycle | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve ``settings`` with uvicorn on a free port; yield a client for it; stop it after."""
    port = free_port()
    app = create_app(settings, lifecycle=lifecycle)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
        timeout_keep_alive=settings.keepalive_seconds,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server._serve())
    for _ in range(500):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if task.done():
        task.result()
        raise RuntimeError("punchclock did not start")
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
        try:
            yield client
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, timeout=15)
