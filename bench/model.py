"""What one measured run produced: the load generator's view plus the server's memory and the row check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LoadResult:
    """Counts and latencies reported by the load generator (wrk or pgbench) for one measured window."""

    requests: int  # completed requests (wrk) or transactions (pgbench)
    window_s: float  # time over which they completed
    non_2xx: int  # HTTP status >= 400 (wrk) or failed transactions (pgbench)
    socket_errors: int  # connect/read/write errors and timeouts
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    unfinished: int = 0  # requests still unanswered when the load generator stopped (see stamp.lua)
    client_cpu_s: float | None = None  # CPU time of the load generator itself (wrk or pgbench)

    @property
    def ok(self) -> int:
        """Requests answered 2xx (committed transactions for pgbench)."""
        return self.requests - self.non_2xx

    @property
    def rps(self) -> float:
        return self.requests / self.window_s if self.window_s > 0 else 0.0


def rows_agree(rows_new: int, load: LoadResult) -> bool:
    """Every 2xx left a row and no row exists without a request: exactly ``ok`` rows, or, when some
    requests were still unanswered as the load generator stopped (their outcome unknown to it), between
    ``ok`` and ``ok + unfinished``."""
    return load.ok <= rows_new <= load.ok + load.unfinished


@dataclass(frozen=True)
class Measurement:
    """One row of the results table."""

    name: str  # stable key, e.g. "post_app_group_c64"
    label: str  # human description
    connections: int
    load: LoadResult
    rss_mb: float | None = None  # peak RSS of the largest server process
    rss_total_mb: float | None = None  # peak RSS summed over the server's processes
    server_processes: int | None = None
    server_cpu_s: float | None = None  # CPU time the server used during the measured run
    db_cpu_s: float | None = None  # CPU time PostgreSQL (postmaster and backends) used during the run
    balancer_cpu_s: float | None = None  # CPU time HAProxy used during the run (cluster runs only)
    mean_batch: float | None = None  # stamps per committed transaction, from the server's /metrics
    slow_commits: int | None = None  # commits that took over 100 ms (server's /metrics)
    machine_cores: float | None = None  # cores the whole machine kept busy (other users' load included)
    rows_new: int | None = None  # rows the run added to the table
    rows_match: bool | None = None  # rows_new == ok (None when the run writes nothing); see rows_agree

    @property
    def server_cpu_us_per_request(self) -> float | None:
        """Server CPU per completed request: a cost figure that other load on the machine barely moves."""
        if self.server_cpu_s is None or not self.load.requests:
            return None
        return round(self.server_cpu_s / self.load.requests * 1e6, 1)

    @property
    def db_cpu_us_per_request(self) -> float | None:
        """PostgreSQL CPU per completed request (per transaction for pgbench): what one durable row costs it."""
        if self.db_cpu_s is None or not self.load.requests:
            return None
        return round(self.db_cpu_s / self.load.requests * 1e6, 1)

    @property
    def stamps(self) -> int | None:
        """Stamps committed in the measured window: the rows it added (None for a run that writes nothing)."""
        return self.rows_new if self.rows_new else None

    def cpu_us_per_stamp(self, cpu_s: float | None) -> float | None:
        """The one definition of CPU per stamp: a process tree's CPU time from /proc over the measured
        window, divided by the stamps committed in that window."""
        stamps = self.stamps
        if cpu_s is None or not stamps:
            return None
        return round(cpu_s / stamps * 1e6, 1)

    def _cores(self, cpu_s: float | None) -> float | None:
        if cpu_s is None or not self.load.window_s:
            return None
        return round(cpu_s / self.load.window_s, 2)

    @property
    def server_cores(self) -> float | None:
        """CPU cores the server kept busy on average: near 1.0 per process means it was CPU-bound."""
        return self._cores(self.server_cpu_s)

    @property
    def db_cores(self) -> float | None:
        return self._cores(self.db_cpu_s)

    @property
    def client_cores(self) -> float | None:
        return self._cores(self.load.client_cpu_s)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        load = data.pop("load")
        return {
            **data,
            "rps": round(self.load.rps, 1),
            "ok": self.load.ok,
            "server_cpu_us_per_request": self.server_cpu_us_per_request,
            "db_cpu_us_per_request": self.db_cpu_us_per_request,
            "server_cpu_us_per_stamp": self.cpu_us_per_stamp(self.server_cpu_s),
            "db_cpu_us_per_stamp": self.cpu_us_per_stamp(self.db_cpu_s),
            "balancer_cpu_us_per_stamp": self.cpu_us_per_stamp(self.balancer_cpu_s),
            "balancer_cores": self._cores(self.balancer_cpu_s),
            "server_cores": self.server_cores,
            "db_cores": self.db_cores,
            "client_cores": self.client_cores,
            "machine_cores": self.machine_cores,
            **{key: (round(value, 3) if isinstance(value, float) else value) for key, value in load.items()},
        }
