"""One measured run: warm up, note the rows, put load on, sample the server's RSS, check the rows.

The runs print nothing themselves: ``bench.run`` announces each through ``bench.progress`` and ends it with
``summary``.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.model import LoadResult, Measurement, rows_agree
from bench.pgbench import PgTarget, run_pgbench
from bench.rows import RowCount, settled
from bench.sampling import MachineSampler, TreeSampler
from bench.server_metrics import CommitStats, commit_stats
from bench.service import RunningService
from bench.settings import BenchSettings
from bench.wrk import run_wrk
from punchclock_tools import postgres


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def postmaster_pid(server: postgres.Server) -> int:
    """The PostgreSQL server's main process; its children are the backends doing the work."""
    return int((server.data_dir / "postmaster.pid").read_text().split()[0])


@dataclass(frozen=True)
class Target:
    """What an HTTP run sends to, and whose CPU it measures: the instances (and their ``/metrics``), the
    PostgreSQL postmasters and, on the cluster, HAProxy."""

    url: str
    server_pids: tuple[int, ...]
    metrics_urls: tuple[str, ...]
    db_pids: tuple[int, ...] = ()
    balancer_pids: tuple[int, ...] = ()

    @classmethod
    def standalone(cls, service: RunningService, db: postgres.Server | None = None) -> Target:
        return cls(service.url, (service.pid,), (service.url,), (postmaster_pid(db),) if db is not None else ())


def _sampler(pids: tuple[int, ...]) -> TreeSampler | contextlib.nullcontext[None]:
    return TreeSampler(pids) if pids else contextlib.nullcontext()


def _cpu(sampler: TreeSampler | None) -> float | None:
    return round(sampler.cpu_seconds, 2) if sampler is not None else None


def _commits(urls: tuple[str, ...]) -> CommitStats | None:
    """The instances' commit counters summed (None when one does not answer)."""
    total = CommitStats()
    for url in urls:
        stats = commit_stats(url)
        if stats is None:
            return None
        total = total + stats
    return total


def http_run(
    name: str,
    label: str,
    target: Target,
    method: str,
    path: str,
    connections: int,
    settings: BenchSettings,
    log: Path,
    rows: RowCount | None = None,
) -> Measurement:
    """wrk against ``target``; with ``rows``, new rows must equal the 2xx responses."""
    if settings.warmup_seconds:
        run_wrk(target.url, method, path, connections, settings.warmup_seconds, log, settings.tail_seconds)
    before = settled(rows) if rows else None
    commits_before = _commits(target.metrics_urls) if rows else None
    with (
        MachineSampler() as machine,
        TreeSampler(target.server_pids) as rss,
        _sampler(target.db_pids) as database,
        _sampler(target.balancer_pids) as balancer,
    ):
        load = run_wrk(target.url, method, path, connections, settings.seconds, log, settings.tail_seconds)
    after = settled(rows) if rows else None
    commits_after = _commits(target.metrics_urls) if rows else None
    commits = commits_after - commits_before if commits_after and commits_before else None
    rows_new = after - before if after is not None and before is not None else None
    return Measurement(
        name=name,
        label=label,
        connections=connections,
        load=load,
        rss_mb=rss.peak_process_mb,
        rss_total_mb=rss.peak_total_mb,
        server_processes=rss.processes,
        server_cpu_s=round(rss.cpu_seconds, 2),
        db_cpu_s=_cpu(database),
        balancer_cpu_s=_cpu(balancer),
        machine_cores=round(machine.cores, 2),
        rows_new=rows_new,
        rows_match=rows_agree(rows_new, load) if rows_new is not None else None,
        mean_batch=commits.mean_batch if commits else None,
        slow_commits=commits.slow_commits if commits else None,
    )


def pgbench_name(connections: int, settings: BenchSettings) -> str:
    """``pgbench_commit`` at the headline concurrency, ``pgbench_commit_c<n>`` otherwise."""
    return "pgbench_commit" if connections == settings.connections else f"pgbench_commit_c{connections}"


def pgbench_run(
    name: str,
    server: PgTarget,
    db_pids: tuple[int, ...],
    connections: int,
    settings: BenchSettings,
    work_dir: Path,
    log: Path,
    rows: RowCount,
    balancer_pids: tuple[int, ...] = (),
) -> Measurement:
    """pgbench's one-row commits; new rows must equal the committed transactions."""
    if settings.warmup_seconds:
        run_pgbench(server, connections, settings.warmup_seconds, work_dir, log, record=False)
    before = settled(rows)
    with MachineSampler() as machine, TreeSampler(db_pids) as database, _sampler(balancer_pids) as balancer:
        load = run_pgbench(server, connections, settings.seconds, work_dir, log)
    rows_new = settled(rows) - before
    return Measurement(
        name=name,
        label="pgbench: one-row INSERT per transaction",
        connections=connections,
        load=load,
        db_cpu_s=round(database.cpu_seconds, 2),
        balancer_cpu_s=_cpu(balancer),
        machine_cores=round(machine.cores, 2),
        rows_new=rows_new,
        rows_match=rows_new == load.ok,
    )


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
