"""The benchmark's knobs, read from the environment once (``BENCH_*``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# A run writes here; `make bench` then records it into results/ (the docs' one source) with its provenance.
RESULTS_DIR = Path(__file__).resolve().parents[1] / ".state" / "bench"


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(",", " ").split())


def _flag(text: str) -> bool:
    return text.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class BenchSettings:
    """What one ``make bench`` run measures and for how long."""

    seconds: int = 15  # BENCH_SECONDS: measured duration of each load run
    warmup_seconds: int = 2  # BENCH_WARMUP_SECONDS: unmeasured load before each run (0 skips it; 1 below 10 s runs)
    connections: int = 64  # BENCH_CONNECTIONS: concurrency of the headline runs
    sweep: tuple[int, ...] = (1, 4, 16, 64, 256)  # BENCH_SWEEP: connections for the group-commit sweep
    scan_rows: tuple[int, ...] = (10_000, 1_000_000)  # BENCH_SCAN_ROWS: table sizes for the GET /app scan
    tail_seconds: int = 1  # BENCH_TAIL_SECONDS: idle end of each wrk run, for the last requests to finish
    scan_seconds: int = 3  # BENCH_SCAN_SECONDS: duration of each list-latency run (at most BENCH_SECONDS)
    workers: int = 1  # BENCH_WORKERS: PUNCHCLOCK_WORKERS of the measured service
    extra_runs: bool = True  # BENCH_EXTRA_RUNS: also pgbench at 1 client, no access log, 2 workers
    cluster: bool = True  # BENCH_CLUSTER: also the three-node synchronous cluster behind HAProxy (needs root)
    results_dir: Path = field(default=RESULTS_DIR)  # BENCH_RESULTS_DIR: where bench.json and the plot go

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BenchSettings:
        """Settings from ``BENCH_*`` variables; unset ones keep their defaults."""
        base = cls()
        seconds = int(env.get("BENCH_SECONDS", base.seconds))
        if seconds < 1:
            raise ValueError("BENCH_SECONDS must be a whole number of seconds, at least 1")
        return cls(
            seconds=seconds,
            warmup_seconds=int(env.get("BENCH_WARMUP_SECONDS", base.warmup_seconds if seconds >= 10 else 1)),
            connections=int(env.get("BENCH_CONNECTIONS", base.connections)),
            sweep=_ints(env["BENCH_SWEEP"]) if env.get("BENCH_SWEEP") else base.sweep,
            scan_rows=_ints(env["BENCH_SCAN_ROWS"]) if env.get("BENCH_SCAN_ROWS") is not None else base.scan_rows,
            tail_seconds=int(env.get("BENCH_TAIL_SECONDS", base.tail_seconds)),
            scan_seconds=int(env.get("BENCH_SCAN_SECONDS", min(base.scan_seconds, seconds))),
            workers=int(env.get("BENCH_WORKERS", base.workers)),
            extra_runs=_flag(env.get("BENCH_EXTRA_RUNS", "1")),
            cluster=_flag(env.get("BENCH_CLUSTER", "1")),
            results_dir=Path(env.get("BENCH_RESULTS_DIR", str(base.results_dir))),
        )
