"""What /readyz costs the database: one shared write check per instance, whatever the probe rate or a stall."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from punchclock_tools import postgres
from punchclock_tools.http import wait_until_ready
from punchclock_tools.process import serving_on

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROBERS = 20  # concurrent /readyz callers, far more than any platform's probes
STALL_SECONDS = 15  # the old behaviour exhausted max_connections within about two seconds of such a stall


async def probe(url: str, seconds: float) -> list[httpx.Response]:
    """``PROBERS`` clients calling /readyz back to back for ``seconds``."""
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient) -> list[httpx.Response]:
        answers = []
        while time.monotonic() < deadline:
            answers.append(await client.get(f"{url}/readyz"))
        return answers

    async with httpx.AsyncClient(timeout=30) as client:
        batches = await asyncio.gather(*(one(client) for _ in range(PROBERS)))
    return [answer for batch in batches for answer in batch]


def heartbeats(pg: postgres.Server) -> int:
    return int(pg.psql("SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'heartbeat'"))


async def test_a_stalled_standby_holds_one_session_however_often_readiness_is_probed(tmp_path: Path) -> None:
    """Given a primary whose synchronous standby is gone, when /readyz is probed by many clients for a while, then
    each answer is a 503 with a generic reason, and punchclock holds no more sessions than its pool: the server
    keeps room for everyone else."""
    with (
        postgres.throwaway(settings={"max_connections": "20"}) as pg,
        serving_on(pg.dsn(), tmp_path / "serve.log", PUNCHCLOCK_POOL_SIZE="4") as (url, process),
    ):
        pg.wait_for_standby("absent_standby")  # commits wait for a standby that never comes
        await asyncio.to_thread(wait_until_ready, url, process, 30, "/healthz")  # no standby: not ready
        answers = await probe(url, STALL_SECONDS)
        sessions = int(pg.psql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'punchclock'"))
        others = pg.psql("SELECT 'still room'", database="postgres")

    assert sessions <= 4
    assert others == "still room"
    assert {answer.status_code for answer in answers} == {503}
    assert {answer.json()["detail"] for answer in answers} == {"the database cannot take writes right now"}


async def test_readiness_probes_commit_about_one_heartbeat_a_second(tmp_path: Path) -> None:
    """Given a healthy database, when many clients probe /readyz for a few seconds, then every answer is 200 and
    the heartbeat row is written about once a second, not once per probe."""
    with postgres.throwaway() as pg, serving_on(pg.dsn(), tmp_path / "serve.log") as (url, process):
        await asyncio.to_thread(wait_until_ready, url, process)
        await asyncio.sleep(1.5)  # statistics reach pg_stat_user_tables at most once a second
        before = heartbeats(pg)
        answers = await probe(url, 4)
        await asyncio.sleep(1.5)
        written = heartbeats(pg) - before

    assert {answer.status_code for answer in answers} == {200}
    assert len(answers) > 100
    assert written <= 4 + 2  # one per second of probing, and one at either edge


async def test_readiness_holds_through_an_outage_shorter_than_the_budget(tmp_path: Path) -> None:
    """Given a ready instance, when its database stops, then /readyz/database fails at once while /readyz stays
    ready (a failover would not empty the balancer or the Service) until the failover budget is spent; when the
    database is back, both pass again."""
    with (
        postgres.throwaway() as pg,
        serving_on(pg.dsn(), tmp_path / "serve.log", PUNCHCLOCK_FAILOVER_BUDGET_SECONDS="4") as (url, process),
    ):
        await asyncio.to_thread(wait_until_ready, url, process)
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            pg.stop("immediate")
            stopped = time.monotonic()
            await asyncio.sleep(1.2)  # past the reuse of the last passing write check
            during = [(await client.get("/readyz")).status_code, (await client.get("/readyz/database")).status_code]
            while time.monotonic() - stopped < 6:
                await asyncio.sleep(0.5)
            after_budget = (await client.get("/readyz")).status_code
            metrics = (await client.get("/metrics")).text
            pg.start()
            await asyncio.to_thread(wait_until_ready, url, process, 30)
            back = (await client.get("/readyz/database")).status_code

    assert during == [200, 503]
    assert after_budget == 503
    assert "punchclock_database_writable 0.0" in metrics
    assert back == 200
