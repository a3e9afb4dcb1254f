"""Several workers, one scrape: ``punchclock serve`` with PUNCHCLOCK_WORKERS=2 as a real process on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from punchclock_tools.http import wait_until_ready
from punchclock_tools.process import serving_on

pytestmark = pytest.mark.postgres

BURST = 50  # concurrent POSTs per round: enough connections for both workers to accept some
ROUNDS = 40  # at most this many rounds before giving up on the second worker


def posts_by_worker(metrics_dir: Path) -> dict[str, float]:
    """POST /app answers counted by each worker, read from its own file in the shared metrics directory."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        (requests,) = [m for m in merged if m.name == "punchclock_http_requests"]
        pid = path.stem.removeprefix("counter_")
        counts[pid] = sum(
            s.value for s in requests.samples if s.labels["route"] == "/app" and s.labels["method"] == "POST"
        )
    return counts


def scraped(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples called ``name`` in a /metrics page, with their labels."""
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


async def test_a_scrape_of_two_workers_reports_both(postgres_url: str, tmp_path: Path) -> None:
    """Given two workers that each answered POSTs, one scrape counts every POST sent, shows each worker's queue
    beside its maximum and one readiness, and the metrics directory is gone once the service exits."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    settings = {"PUNCHCLOCK_WORKERS": "2", "PUNCHCLOCK_ACCESS_LOG": "false", "TMPDIR": str(temp)}
    with serving_on(postgres_url, tmp_path / "serve.log", **settings) as (url, process):
        await asyncio.to_thread(wait_until_ready, url, process)
        (metrics_dir,) = temp.glob("punchclock-metrics-*")
        sent, statuses = 0, []
        limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)  # a new connection each POST
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:
            for _ in range(ROUNDS):
                responses = await asyncio.gather(*(client.post(f"{url}/app") for _ in range(BURST)))
                sent += BURST
                statuses += [r.status_code for r in responses]
                by_worker = posts_by_worker(metrics_dir)
                if len(by_worker) == 2 and all(by_worker.values()):
                    break
            page = (await client.get(f"{url}/metrics")).text
        process.send_signal(signal.SIGTERM)
        exit_code = await asyncio.to_thread(process.wait, 30)

    assert statuses == [201] * sent
    assert len(by_worker) == 2, by_worker
    assert all(by_worker.values()), by_worker
    assert sum(by_worker.values()) == sent
    posts = scraped(page, "punchclock_http_requests_total")
    assert [value for labels, value in posts if labels["route"] == "/app" and labels["method"] == "POST"] == [sent]
    latency = scraped(page, "punchclock_http_request_duration_seconds_count")
    assert ({"route": "/app", "method": "POST"}, sent) in latency
    assert scraped(page, "punchclock_stamps_committed_total") == [({}, sent)]
    queue_max = scraped(page, "punchclock_queue_max")
    assert sorted((labels["pid"], value) for labels, value in queue_max) == [(pid, 10_000) for pid in sorted(by_worker)]
    depth = scraped(page, "punchclock_queue_depth")
    assert sorted(labels["pid"] for labels, _ in depth) == sorted(by_worker)
    assert scraped(page, "punchclock_ready") == [({}, 1.0)]  # the latest readiness check, whichever worker ran it
    assert len(scraped(page, "punchclock_build_info")) == 1  # one instance, one version line
    assert exit_code == 0
    assert list(temp.iterdir()) == []
