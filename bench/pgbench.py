"""pgbench inserting one row per transaction into ``stamps``: the commit ceiling of this PostgreSQL here."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bench.model import LoadResult
from bench.processes import run_to_end
from punchclock_tools import postgres
from punchclock_tools.stats import percentile

# The same statement shape the service's one-row path needs: a server-made unique key and a timestamp.
# pgbench's -T includes opening its connections (SCRAM authentication, ~1 s for 64 clients on a busy machine);
# its tps excludes that time, so the run gets one more second to keep the measured window near ``seconds``.
CONNECT_ALLOWANCE_SECONDS = 1

INSERT_ONE = "INSERT INTO stamps (key, recorded_at) VALUES (gen_random_uuid()::text, now());\n"


@dataclass(frozen=True)
class PgTarget:
    """Where pgbench connects: a standalone server's port, or the cluster's HAProxy write port."""

    port: int
    password: str
    user: str = "punchclock"
    database: str = "punchclock"

    @classmethod
    def of(cls, server: postgres.Server) -> PgTarget:
        return cls(server.port, postgres.PASSWORD)


def run_pgbench(
    server: PgTarget, connections: int, seconds: int, work_dir: Path, log: Path, record: bool = True
) -> LoadResult:
    """``connections`` clients commit one-row INSERTs for ``seconds``; latencies come from pgbench's
    per-transaction log when ``record`` (a warm-up passes False)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    script = work_dir / "insert_one.sql"
    script.write_text(INSERT_ONE)
    for old in work_dir.glob("pgbench_log*"):
        old.unlink()
    argv = [
        str(postgres.PG_BIN / "pgbench"),
        "-n",
        "-M",
        "prepared",
        "-c",
        str(connections),
        "-j",
        str(max(1, min(2, connections))),
        "-T",
        str(seconds + CONNECT_ALLOWANCE_SECONDS),
        "-f",
        str(script),
        "-h",
        "127.0.0.1",
        "-p",
        str(server.port),
        "-U",
        server.user,
    ]
    if record:
        argv += ["-l", f"--log-prefix={work_dir / 'pgbench_log'}"]
    argv.append(server.database)
    env = {**os.environ, "PGPASSWORD": server.password}
    text, returncode, client_cpu_s = run_to_end(
        argv, work_dir / "pgbench.out", log, seconds + 120, env=env, cwd=work_dir
    )
    if returncode != 0:
        raise RuntimeError(f"pgbench failed ({returncode}):\n{text[-2000:]}")
    result = parse_pgbench(text, sorted(_latencies_ms(work_dir)) if record else [])
    return dataclasses.replace(result, client_cpu_s=round(client_cpu_s, 2))


def _latencies_ms(work_dir: Path) -> list[float]:
    """Per-transaction latencies: the third field of each line of pgbench's ``-l`` logs, in µs."""
    values: list[float] = []
    for path in work_dir.glob("pgbench_log*"):
        with path.open() as handle:
            values.extend(int(line.split()[2]) / 1000 for line in handle if line.strip())
    return values


def parse_pgbench(text: str, latencies: list[float]) -> LoadResult:
    """Transactions, tps and failures from pgbench's summary; percentiles from ``latencies`` (sorted, ms)."""
    processed = re.search(r"number of transactions actually processed: (\d+)", text)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    failed = re.search(r"number of failed transactions: (\d+)", text)
    if processed is None or tps is None:
        raise RuntimeError(f"could not read pgbench's summary:\n{text[-2000:]}")
    count = int(processed.group(1))
    failures = int(failed.group(1)) if failed else 0
    rate = float(tps.group(1))
    return LoadResult(
        requests=count + failures,
        window_s=count / rate if rate else 0.0,
        non_2xx=failures,
        socket_errors=0,
        p50_ms=percentile(latencies, 50) or 0.0,
        p99_ms=percentile(latencies, 99) or 0.0,
        p999_ms=percentile(latencies, 99.9) or 0.0,
        max_ms=latencies[-1] if latencies else 0.0,
    )
