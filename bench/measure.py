"""One measured run: warm up, note the rows, put load on, sample the server's RSS, check the rows.

The runs print nothing themselves: ``bench.run`` announces each through ``bench.progress`` and ends it with
``summary``.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from bench.model import LoadResult, Measurement, rows_agree
from bench.pgbench import run_pgbench
from bench.rows import RowCount, settled
from bench.sampling import MachineSampler, TreeSampler
from bench.server_metrics import commit_stats
from bench.service import RunningService
from bench.settings import BenchSettings
from bench.wrk import run_wrk
from punchclock_tools import postgres


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def postmaster_pid(server: postgres.Server) -> int:
    """The PostgreSQL server's main process; its children are the backends doing the work."""
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])


def _db_sampler(db: postgres.Server | None) -> TreeSampler | contextlib.nullcontext[None]:
    return TreeSampler(postmaster_pid(db)) if db is not None else contextlib.nullcontext()


def http_run(
    name: str,
    label: str,
    service: RunningService,
    method: str,
    path: str,
    connections: int,
    settings: BenchSettings,
    log: Path,
    rows: RowCount | None = None,
    db: postgres.Server | None = None,
) -> Measurement:
    """wrk against the running service; with ``rows``, new rows must equal the 2xx responses; with ``db``,
    PostgreSQL's CPU time is measured too."""
    if settings.warmup_seconds:
        run_wrk(service.url, method, path, connections, settings.warmup_seconds, log, settings.tail_seconds)
    before = settled(rows) if rows else None
    commits_before = commit_stats(service.url) if rows else None
    with MachineSampler() as machine, TreeSampler(service.pid) as rss, _db_sampler(db) as database:
        load = run_wrk(service.url, method, path, connections, settings.seconds, log, settings.tail_seconds)
    after = settled(rows) if rows else None
    commits_after = commit_stats(service.url) if rows else None
    commits = commits_after - commits_before if commits_after and commits_before else None
    rows_new = after - before if after is not None and before is not None else None
    result = Measurement(
        name=name,
        label=label,
        connections=connections,
        load=load,
        rss_mb=rss.peak_process_mb,
        rss_total_mb=rss.peak_total_mb,
        server_processes=rss.processes,
        server_cpu_s=round(rss.cpu_seconds, 2),
        db_cpu_s=round(database.cpu_seconds, 2) if database is not None else None,
        machine_cores=round(machine.cores, 2),
        rows_new=rows_new,
        rows_match=rows_agree(rows_new, load) if rows_new is not None else None,
        mean_batch=commits.mean_batch if commits else None,
        slow_commits=commits.slow_commits if commits else None,
    )
    return result


def pgbench_name(connections: int, settings: BenchSettings) -> str:
    """``pgbench_commit`` at the headline concurrency, ``pgbench_commit_c<n>`` otherwise."""
    return "pgbench_commit" if connections == settings.connections else f"pgbench_commit_c{connections}"


def pgbench_run(
    server: postgres.Server,
    connections: int,
    settings: BenchSettings,
    work_dir: Path,
    log: Path,
    rows: RowCount,
) -> Measurement:
    """pgbench's one-row commits; new rows must equal the committed transactions."""
    if settings.warmup_seconds:
        run_pgbench(server, connections, settings.warmup_seconds, work_dir, log, record=False)
    before = settled(rows)
    with MachineSampler() as machine, TreeSampler(postmaster_pid(server)) as database:
        load = run_pgbench(server, connections, settings.seconds, work_dir, log)
    rows_new = settled(rows) - before
    result = Measurement(
        name=pgbench_name(connections, settings),
        label="pgbench: one-row INSERT per transaction",
        connections=connections,
        load=load,
        db_cpu_s=round(database.cpu_seconds, 2),
        machine_cores=round(machine.cores, 2),
        rows_new=rows_new,
        rows_match=rows_new == load.ok,
    )
    return result


def summary(m: Measurement) -> str:
    load: LoadResult = m.load
    text = (
        f"{load.rps:,.0f}/s  p50 {load.p50_ms:.2f} ms  p99 {load.p99_ms:.2f} ms  "
        f"non-2xx {load.non_2xx}  socket errors {load.socket_errors}"
    )
    if m.rss_mb is not None:
        text += f"  RSS {m.rss_mb:.0f} MB  server CPU {m.server_cpu_us_per_request} µs/req"
    text += (
        f"  cores busy: server {m.server_cores} db {m.db_cores} load generator {m.client_cores}"
        f" whole machine {m.machine_cores}"
    )
    if m.mean_batch is not None:
        text += f"  mean batch {m.mean_batch}  commits over 100 ms {m.slow_commits}"
    if m.rows_match is not None:
        text += f"  rows {m.rows_new} {'==' if m.rows_new == load.ok else '!='} 2xx {load.ok}"
        if load.unfinished:
            text += f" ({load.unfinished} unanswered at the end: raise BENCH_TAIL_SECONDS)"
    return text
