"""What a 201 promises on PostgreSQL with a synchronous standby, and what the drain bound promises."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from punchclock_tools import postgres
from punchclock_tools.http import wait_until_ready
from punchclock_tools.process import serving_on, stamps_locked

pytestmark = pytest.mark.postgres


@contextlib.contextmanager
def serving_without_its_standby(tmp_path: Path, budget_seconds: str) -> Iterator[tuple[postgres.Server, str]]:
    """A throwaway primary whose commits wait for a synchronous standby that never comes, and punchclock
    serving on it with that failover budget (live on /healthz; not ready, having no standby)."""
    with (
        postgres.throwaway() as pg,
        serving_on(pg.dsn(), tmp_path / "serve.log", PUNCHCLOCK_FAILOVER_BUDGET_SECONDS=budget_seconds) as (
            url,
            process,
        ),
    ):
        pg.wait_for_standby("absent_standby")
        wait_until_ready(url, process, 30, "/healthz")
        yield pg, url


async def test_a_commit_the_standby_never_confirmed_is_not_acknowledged(tmp_path: Path) -> None:
    """Given a primary whose synchronous standby does not answer, when the backend waiting for it is killed
    (its row is now visible on the primary alone) and punchclock retries, then the POST is not answered 201:
    the retry confirms the row through the standby first, and answers 503 when the budget is spent."""
    with serving_without_its_standby(tmp_path, budget_seconds="3") as (pg, url):
        async with httpx.AsyncClient(timeout=30) as client:
            post = asyncio.create_task(client.post(f"{url}/app", headers={"Idempotency-Key": "held"}))
            await asyncio.sleep(1)  # the insert now waits for the absent standby
            killed = pg.psql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'punchclock' AND wait_event = 'SyncRep'",
                database="postgres",
            )
            response = await post
        visible = pg.psql("SELECT count(*) FROM stamps WHERE key = 'held'")

    assert killed == "1"
    assert visible == "1"  # committed on the primary alone
    assert response.status_code == 503
    assert response.headers["retry-after"].isdigit()


async def test_a_keyless_post_of_unknown_outcome_gets_the_servers_key_and_its_retry_records_once(
    tmp_path: Path,
) -> None:
    """Given a POST without an Idempotency-Key whose commit waits for an absent standby past the budget, then the
    503 carries the key the server generated; once the standby requirement is lifted, a retry with that key is
    answered with the original stamp, and the table holds it once."""
    with serving_without_its_standby(tmp_path, budget_seconds="2") as (pg, url):
        async with httpx.AsyncClient(timeout=30) as client:
            unknown = await client.post(f"{url}/app")
            pg.wait_for_standby(None)
            key = unknown.headers.get("idempotency-key", "")
            retried = await client.post(f"{url}/app", headers={"Idempotency-Key": key})
        rows = pg.psql(f"SELECT count(*) FROM stamps WHERE key = '{key}'")

    assert (unknown.status_code, len(key)) == (503, 32)
    assert (retried.status_code, retried.headers.get("idempotent-replayed")) == (201, "true")
    assert rows == "1"


async def test_requests_held_past_a_short_drain_bound_get_503_not_500(postgres_url: str, tmp_path: Path) -> None:
    """Given POSTs held by a table lock and a drain bound of half a second, when SIGTERM arrives, then each
    POST is answered 503 with Retry-After before the bound and the process exits promptly."""
    with serving_on(postgres_url, tmp_path / "serve.log", PUNCHCLOCK_DRAIN_SECONDS="0.5") as (url, process):
        await asyncio.to_thread(wait_until_ready, url, process)
        async with stamps_locked(postgres_url), httpx.AsyncClient(timeout=30) as client:
            posts = [asyncio.create_task(client.post(f"{url}/app")) for _ in range(5)]
            await asyncio.sleep(1)
            process.send_signal(signal.SIGTERM)
            responses = await asyncio.gather(*posts)
            exit_code = await asyncio.to_thread(process.wait, 30)

    assert [r.status_code for r in responses] == [503] * 5
    assert {r.headers["content-type"] for r in responses} == {"application/problem+json"}
    assert all(r.headers["retry-after"].isdigit() for r in responses)
    assert exit_code == 0
