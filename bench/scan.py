"""Table-size scan: ``GET /app`` latency for the first page and a deep cursor page as the table grows.

Rows are added straight through SQL (the write path is measured elsewhere). The deep page is reached the way
a client would: following ``next`` cursors from the newest page until the given depth.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bench.progress import Progress
from bench.service import RunningService
from bench.settings import BenchSettings
from bench.wrk import run_wrk
from punchclock_tools import postgres

PAGE = 100  # the list endpoint's default page size: what a client gets without asking
WALK_PAGE = 1000  # the largest page the endpoint serves, to walk deep quickly
DEPTH = 0.9  # the deep page starts this far into the table (from the newest row)
CONNECTIONS = 4


def fill_to(server: postgres.Server, rows: int, chunk: int = 1_000_000) -> int:
    """Add rows straight through SQL until ``stamps`` holds ``rows`` (ids and times both ascending), one
    statement per ``chunk`` rows so each stays well inside the SQL client's timeout."""
    have = int(server.psql("SELECT count(*) FROM stamps"))
    while have < rows:
        add = min(chunk, rows - have)
        server.psql(
            "INSERT INTO stamps (key, recorded_at) "
            f"SELECT gen_random_uuid()::text, now() - ({add} - g) * interval '1 microsecond' "
            f"FROM generate_series(1, {add}) AS g"
        )
        have += add
    server.psql("VACUUM ANALYZE stamps")
    return int(server.psql("SELECT count(*) FROM stamps"))


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (loopback URL we built)
        return dict(json.loads(response.read()))


def deep_cursor(base_url: str, depth: int) -> str | None:
    """The ``next`` cursor after about ``depth`` rows, following cursors from the newest page."""
    walked, cursor = 0, None
    while walked < depth:
        limit = min(WALK_PAGE, depth - walked)
        query = {"limit": str(limit)} | ({"before": cursor} if cursor else {})
        page = _get_json(f"{base_url}/app?{urllib.parse.urlencode(query)}")
        walked += len(page["items"])
        cursor = page["next"]
        if cursor is None:
            break
    return cursor


def scan_step(rows: int) -> str:
    """The progress key of the scan at one table size (both of its pages)."""
    return f"scan_{rows}"


def table_scan(
    server: postgres.Server, service: RunningService, settings: BenchSettings, log: Path, progress: Progress
) -> list[dict[str, Any]]:
    """For each size in ``settings.scan_rows``: grow the table, then time the first and a deep page."""
    server.psql("TRUNCATE stamps")
    points: list[dict[str, Any]] = []
    for size in sorted(settings.scan_rows):
        progress.begin(
            scan_step(size),
            f"GET /app at {size:,} rows (filling the table through SQL), first and deep page, "
            f"{settings.scan_seconds} s each",
        )
        figures = []
        rows = fill_to(server, size)
        depth = int(rows * DEPTH)
        cursor = deep_cursor(service.url, depth)
        pages = {"first": f"/app?limit={PAGE}"}
        if cursor:
            pages["deep"] = f"/app?limit={PAGE}&before={cursor}"
        for which, path in pages.items():
            load = run_wrk(service.url, "GET", path, CONNECTIONS, settings.scan_seconds, log, settings.tail_seconds)
            point = {
                "rows": rows,
                "page": which,
                "depth": 0 if which == "first" else depth,
                "limit": PAGE,
                "connections": CONNECTIONS,
                "rps": round(load.rps, 1),
                "p50_ms": round(load.p50_ms, 3),
                "p99_ms": round(load.p99_ms, 3),
                "non_2xx": load.non_2xx,
            }
            figures.append(f"{which} page {load.rps:,.0f}/s  p50 {load.p50_ms:.2f} ms  p99 {load.p99_ms:.2f} ms")
            points.append(point)
        progress.end(f"{rows:,} rows; " + "; ".join(figures))
    return points
