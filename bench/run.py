"""The whole benchmark, back to back in one run: ceilings, the write path in each mode, sweep, scan."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import machine, plot, report
from bench.measure import http_run, pgbench_run, say
from bench.model import Measurement
from bench.processes import interrupts_unwind
from bench.rows import RowCount, postgres_rows, sqlite_rows
from bench.scan import table_scan
from bench.service import RunningService, migrate, running_service
from bench.settings import BenchSettings
from bench.wrk import wrk_binary
from punchclock_tools import postgres

HEALTHZ = "GET /healthz (no database)"

# Variants of POST /app at the headline concurrency, each on a service of its own: (name, label, settings).
POST_VARIANTS = [
    ("post_app_per_request", "POST /app, per-request commit", {"PUNCHCLOCK_COMMIT_MODE": "per-request"}),
]
# Informative runs beside the headline ones (BENCH_EXTRA_RUNS): what logging and a second process change.
EXTRA_POST_VARIANTS = [
    ("post_app_group_no_access_log", "POST /app, group commit, no access log", {"PUNCHCLOCK_ACCESS_LOG": "false"}),
    ("post_app_group_2_workers", "POST /app, group commit, 2 workers", {"PUNCHCLOCK_WORKERS": "2"}),
]


def measure_all(settings: BenchSettings, work: Path) -> tuple[list[Measurement], list[dict[str, Any]]]:
    """Every run in a fixed order; everything started here is stopped before returning or raising."""
    runs: list[Measurement] = []
    scan: list[dict[str, Any]] = []
    conns = settings.connections
    log = work / "bench.log"
    workers = {"PUNCHCLOCK_WORKERS": str(settings.workers)}

    def post(
        name: str, label: str, svc: RunningService, connections: int, rows: RowCount, db: postgres.Server | None
    ) -> None:
        runs.append(http_run(name, label, svc, "POST", "/app", connections, settings, log, rows, db))

    with postgres.throwaway(parent=work) as pg:
        dsn = pg.dsn()
        migrate(dsn, log)
        rows = postgres_rows(pg)
        runs.append(pgbench_run(pg, conns, settings, work / "pgbench", log, rows))
        if settings.extra_runs and conns != 1:  # one client: bound by the latency of one WAL flush
            runs.append(pgbench_run(pg, 1, settings, work / "pgbench", log, rows))
        with running_service(dsn, work / "serve-group.log", workers) as svc:
            runs.append(http_run("healthz", HEALTHZ, svc, "GET", "/healthz", conns, settings, log))
            for c in [conns, *sorted(set(settings.sweep) - {conns})]:
                post(f"post_app_group_c{c}", "POST /app, group commit", svc, c, rows, pg)
        for name, label, overrides in POST_VARIANTS + (EXTRA_POST_VARIANTS if settings.extra_runs else []):
            with running_service(dsn, work / f"serve-{name}.log", {**workers, **overrides}) as svc:
                post(name, label, svc, conns, rows, pg)
        if settings.scan_rows:
            with running_service(dsn, work / "serve-scan.log", workers) as svc:
                scan = table_scan(pg, svc, settings, log)
    sqlite_db = work / "sqlite" / "punchclock.db"
    sqlite_db.parent.mkdir()
    with running_service(f"sqlite:///{sqlite_db}", work / "serve-sqlite.log") as svc:
        post("post_app_sqlite", "POST /app, SQLite (embedded default)", svc, conns, sqlite_rows(sqlite_db), None)
    return runs, scan


def main() -> int:
    settings = BenchSettings.from_env(os.environ)
    wrk_binary()
    described = machine.describe()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="punchclock-bench-"))
    work.chmod(0o755)  # the postgres user must reach its data directory inside
    try:
        with interrupts_unwind():
            try:
                runs, scan = measure_all(settings, work)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except KeyboardInterrupt as stopped:
        say(f"bench: {stopped or 'interrupted'}; every process it started is stopped, its files removed")
        return 130
    described["loadavg_after"] = machine.loadavg()
    knobs = {
        "seconds": settings.seconds,
        "warmup_seconds": settings.warmup_seconds,
        "workers": settings.workers,
        "sweep": list(settings.sweep),
        "scan_rows": list(settings.scan_rows),
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    results = report.build(runs, settings.connections, scan, described, knobs)
    report.write_json(results, settings.results_dir / "latest.json")
    plot.plot(results, settings.results_dir / "concurrency.png")
    print(report.text_table(results))
    print(f"\nwrote {settings.results_dir / 'latest.json'} and {settings.results_dir / 'concurrency.png'}")
    return 0 if results["rows_match"] else 1
