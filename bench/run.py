"""The whole benchmark, back to back in one run: ceilings, the write path in each mode, sweep, scan."""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cluster, machine, plot, report
from bench.measure import Target, http_run, pgbench_name, pgbench_run, postmaster_pid, say, summary
from bench.model import Measurement
from bench.pgbench import CONNECT_ALLOWANCE_SECONDS, PgTarget
from bench.processes import interrupts_unwind
from bench.progress import Progress, Step
from bench.rows import RowCount, postgres_rows, sqlite_rows
from bench.scan import scan_step, table_scan
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


def pgbench_clients(settings: BenchSettings) -> list[int]:
    """The headline clients, then one client (bound by the latency of one WAL flush) among the extra runs."""
    return [settings.connections] + ([1] if settings.extra_runs and settings.connections != 1 else [])


def sweep_connections(settings: BenchSettings) -> list[int]:
    """The headline concurrency first, then the rest of the group-commit sweep."""
    return [settings.connections, *sorted(set(settings.sweep) - {settings.connections})]


def post_variants(settings: BenchSettings) -> list[tuple[str, str, dict[str, str]]]:
    return POST_VARIANTS + (EXTRA_POST_VARIANTS if settings.extra_runs else [])


def plan(settings: BenchSettings) -> list[Step]:
    """Every run ``measure_all`` makes, in its order, with the seconds of load the settings give it."""
    warm = settings.warmup_seconds
    wrk = settings.seconds + settings.tail_seconds + (warm + settings.tail_seconds if warm else 0)
    pgbench = settings.seconds + CONNECT_ALLOWANCE_SECONDS + (warm + CONNECT_ALLOWANCE_SECONDS if warm else 0)
    scan_page = settings.scan_seconds + settings.tail_seconds
    return [
        *(Step(pgbench_name(c, settings), pgbench) for c in pgbench_clients(settings)),
        Step("healthz", wrk),
        *(Step(f"post_app_group_c{c}", wrk) for c in sweep_connections(settings)),
        *(Step(name, wrk) for name, _, _ in post_variants(settings)),
        *(Step(scan_step(rows), 2 * scan_page) for rows in sorted(settings.scan_rows)),  # first and deep page
        Step("post_app_sqlite", wrk),
        *cluster.steps(settings, wrk, pgbench),
    ]


def measure_all(
    settings: BenchSettings, work: Path, progress: Progress
) -> tuple[list[Measurement], list[dict[str, Any]]]:
    """Every run in ``plan``'s order; everything started here is stopped before returning or raising."""
    runs: list[Measurement] = []
    scan: list[dict[str, Any]] = []
    conns = settings.connections
    log = work / "bench.log"
    workers = {"PUNCHCLOCK_WORKERS": str(settings.workers)}

    def measured(name: str, description: str, run: Callable[[], Measurement]) -> None:
        progress.begin(name, f"{description}, {settings.seconds} s")
        runs.append(run())
        progress.end(summary(runs[-1]))

    def post(
        name: str, label: str, svc: RunningService, connections: int, rows: RowCount, db: postgres.Server | None
    ) -> None:
        measured(
            name,
            f"{label}, {connections} connections",
            lambda: http_run(name, label, Target.standalone(svc, db), "POST", "/app", connections, settings, log, rows),
        )

    with postgres.throwaway(parent=work, tls=True) as pg:  # production refuses PostgreSQL without verified TLS
        dsn = pg.dsn()
        migrate(dsn, log)
        rows = postgres_rows(pg)
        for clients in pgbench_clients(settings):
            measured(
                pgbench_name(clients, settings),
                f"pgbench one-row INSERT per transaction, {clients} clients",
                functools.partial(
                    pgbench_run,
                    pgbench_name(clients, settings),
                    PgTarget.of(pg),
                    (postmaster_pid(pg),),
                    clients,
                    settings,
                    work / "pgbench",
                    log,
                    rows,
                ),
            )
        with running_service(dsn, work / "serve-group.log", workers) as svc:
            measured(
                "healthz",
                f"{HEALTHZ}, {conns} connections",
                lambda: http_run("healthz", HEALTHZ, Target.standalone(svc), "GET", "/healthz", conns, settings, log),
            )
            for c in sweep_connections(settings):
                post(f"post_app_group_c{c}", "POST /app, group commit", svc, c, rows, pg)
        for name, label, overrides in post_variants(settings):
            with running_service(dsn, work / f"serve-{name}.log", {**workers, **overrides}) as svc:
                post(name, label, svc, conns, rows, pg)
        if settings.scan_rows:
            with running_service(dsn, work / "serve-scan.log", workers) as svc:
                scan = table_scan(pg, svc, settings, log, progress)
    sqlite_db = work / "sqlite" / "punchclock.db"
    sqlite_db.parent.mkdir()
    with running_service(f"sqlite:///{sqlite_db}", work / "serve-sqlite.log") as svc:
        post("post_app_sqlite", "POST /app, SQLite (embedded default)", svc, conns, sqlite_rows(sqlite_db), None)
    if settings.cluster:
        cluster.measure(settings, work, log, measured)
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
                runs, scan = measure_all(settings, work, Progress(plan(settings), say))
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
        "cluster": settings.cluster,
        "started_at": started.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - t0, 1),
    }
    results = report.build(runs, settings.connections, scan, described, knobs)
    report.write_json(results, settings.results_dir / "bench.json")
    plot.plot(results, settings.results_dir / "bench-concurrency.png")
    print(report.text_table(results))
    print(f"\nwrote {settings.results_dir / 'bench.json'} and {settings.results_dir / 'bench-concurrency.png'}")
    return 0 if results["rows_match"] else 1
