"""Serving on PostgreSQL as a real process: drain on SIGTERM, several workers, riding out a database outage."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import pytest

from punchclock_tools import postgres
from punchclock_tools.http import wait_until_ready
from punchclock_tools.process import serving_on, stamps_locked

pytestmark = pytest.mark.postgres


async def test_requests_in_flight_at_sigterm_complete_and_are_stored(postgres_url: str, tmp_path: Path) -> None:
    """Given 50 POSTs held mid-commit by a table lock, when SIGTERM arrives and the lock is released, then
    all 50 are answered 201, their rows exist, and the process exits 0."""
    with serving_on(postgres_url, tmp_path / "serve.log", PUNCHCLOCK_ACCESS_LOG="false") as (url, process):
        await asyncio.to_thread(wait_until_ready, url, process)
        async with stamps_locked(postgres_url) as blocker, httpx.AsyncClient(timeout=60) as client:
            posts = [asyncio.create_task(client.post(f"{url}/app")) for _ in range(50)]
            await asyncio.sleep(1)  # every POST is now waiting on the locked table
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(1)
            await blocker.execute("ROLLBACK")
            responses = await asyncio.gather(*posts)
            exit_code = await asyncio.to_thread(process.wait, 30)
            stored = {row["id"] for row in await blocker.fetch("SELECT id FROM stamps")}

    assert [r.status_code for r in responses] == [201] * 50
    assert {r.json()["id"] for r in responses} <= stored
    assert exit_code == 0


async def test_drain_delay_fails_readiness_but_keeps_serving(postgres_url: str, tmp_path: Path) -> None:
    """During PUNCHCLOCK_DRAIN_DELAY_SECONDS after SIGTERM, /readyz is 503 while POSTs still get 201."""
    with serving_on(postgres_url, tmp_path / "serve.log", PUNCHCLOCK_DRAIN_DELAY_SECONDS="3") as (url, process):
        await asyncio.to_thread(wait_until_ready, url, process)
        process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(timeout=10) as client:
            ready = await client.get(f"{url}/readyz")
            posted = await client.post(f"{url}/app")
        exit_code = await asyncio.to_thread(process.wait, 30)
    assert ready.status_code == 503
    assert posted.status_code == 201
    assert posted.headers["connection"] == "close"
    assert exit_code == 0


async def test_two_workers_share_the_port(postgres_url: str, tmp_path: Path) -> None:
    """With PUNCHCLOCK_WORKERS=2, two processes serve one port and every id is distinct."""
    with serving_on(postgres_url, tmp_path / "serve.log", PUNCHCLOCK_WORKERS="2") as (url, process):
        await asyncio.to_thread(wait_until_ready, url, process)
        async with httpx.AsyncClient() as client:
            responses = await asyncio.gather(*(client.post(f"{url}/app") for _ in range(200)))
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
    assert [r.status_code for r in responses].count(201) == 200
    assert len({r.json()["id"] for r in responses}) == 200
    assert "workers started" in (tmp_path / "serve.log").read_text()


async def test_database_outage_answers_503_quickly_then_recovers(tmp_path: Path) -> None:
    """Given a service on its own PostgreSQL, when the database stops, POSTs get 503 + Retry-After within the
    failover budget and /readyz is 503; when it starts again, the same process serves 201s."""
    with (
        postgres.throwaway() as pg,
        serving_on(pg.dsn(), tmp_path / "serve.log", PUNCHCLOCK_FAILOVER_BUDGET_SECONDS="2") as (url, process),
    ):
        await asyncio.to_thread(wait_until_ready, url, process)
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.post(f"{url}/app")).status_code == 201
            await asyncio.to_thread(pg.stop, "immediate")
            started = time.monotonic()
            down = await client.post(f"{url}/app")
            waited = time.monotonic() - started
            not_ready = await client.get(f"{url}/readyz")
            reads = [await client.get(f"{url}{path}") for path in ("/app", "/app/1", "/display")]
            await asyncio.to_thread(_start, pg)
            await asyncio.to_thread(wait_until_ready, url, process)
            back = await client.post(f"{url}/app")
    assert down.status_code == 503
    assert down.headers["retry-after"].isdigit()
    assert down.headers["content-type"] == "application/problem+json"
    assert waited < 30  # bounded by the budget, not hanging (the budget is 2 s; the bound allows a busy machine)
    assert not_ready.status_code == 503
    assert [r.status_code for r in reads] == [503, 503, 503]
    assert all(r.headers["retry-after"].isdigit() for r in reads)
    assert all(str(pg.port) not in r.text for r in reads)  # the driver's words stay in the log
    assert back.status_code == 201


def _start(pg: postgres.Server) -> None:
    pg.start()
