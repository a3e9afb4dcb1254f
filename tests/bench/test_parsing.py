"""The benchmark's readings of wrk, pgbench and its own results (no processes needed)."""

from __future__ import annotations

from bench.model import LoadResult, Measurement, rows_agree
from bench.pgbench import parse_pgbench
from bench.report import build, markdown_table
from bench.settings import BenchSettings
from bench.wrk import parse_wrk

WRK_OUTPUT = """Running 4s test @ http://127.0.0.1:1234
  2 threads and 64 connections
WRK_RESULT {"requests": 40000, "unfinished": 0, "window_s": 2.000000, "errors_connect": 0, "errors_read": 1, \
"errors_write": 0, "errors_status": 3, "errors_timeout": 2, "latency_mean_us": 1500.0, "latency_max_us": 9000, \
"p50_us": 1200, "p90_us": 2000, "p99_us": 4000, "p999_us": 8000}
"""

PGBENCH_OUTPUT = """transaction type: insert_one.sql
number of clients: 64
number of transactions actually processed: 50000
number of failed transactions: 0 (0.000%)
latency average = 2.5 ms
tps = 25000.000000 (without initial connection time)
"""


def load(rps: float, p99: float = 5.0) -> LoadResult:
    return LoadResult(int(rps * 10), 10.0, 0, 0, 1.0, p99, p99 * 2, p99 * 3)


def test_wrk_summary_is_read_from_the_script_line() -> None:
    """Given stamp.lua's result line, then rate, 2xx and errors come from it, not from wrk's own wall clock."""
    result = parse_wrk(WRK_OUTPUT)
    assert (result.rps, result.ok, result.non_2xx, result.socket_errors, result.p99_ms) == (
        20000.0,
        39997,
        3,
        3,
        4.0,
    )


def test_pgbench_summary_gives_committed_transactions_and_rate() -> None:
    """Given pgbench's summary and sorted latencies, then committed count, tps and percentiles follow."""
    result = parse_pgbench(PGBENCH_OUTPUT, [float(n) for n in range(1, 1001)])
    assert (result.ok, round(result.rps), result.p50_ms, result.p999_ms, result.max_ms) == (
        50000,
        25000,
        500.0,
        999.0,
        1000.0,
    )


def test_headline_keys_ratios_and_targets() -> None:
    """Given the five headline runs and the cluster's three, then bench.json carries the required keys, ratios
    and verdicts."""
    runs = [
        Measurement("pgbench_commit", "pgbench", 64, load(20000, p99=9.0), rows_new=200000, rows_match=True),
        Measurement("healthz", "healthz", 64, load(40000), rss_mb=50.0),
        Measurement(
            "post_app_group_c64", "group", 64, load(30000, p99=8.0), rss_mb=60.0, rows_new=300000, rows_match=True
        ),
        Measurement(
            "post_app_per_request", "per-request", 64, load(5000), rss_mb=55.0, rows_new=50000, rows_match=True
        ),
        Measurement("post_app_sqlite", "sqlite", 64, load(8000), rss_mb=40.0, rows_new=80000, rows_match=True),
        Measurement("cluster_pgbench_commit", "pgbench", 64, load(10000), rows_new=100000, rows_match=True),
        Measurement("cluster_post_app_balancer", "lb", 64, load(12000), rss_mb=60.0, rows_new=120000, rows_match=True),
        Measurement("cluster_post_app_direct", "one", 64, load(13000), rss_mb=60.0, rows_new=130000, rows_match=True),
    ]
    results = build(runs, 64, [], {"cores": 2}, {})
    expected = {
        "post_app_rps": 30000.0,
        "post_app_p99_ms": 8.0,
        "per_request_commit_rps": 5000.0,
        "pgbench_commit_tps": 20000.0,
        "healthz_rps": 40000.0,
        "sqlite_post_app_rps": 8000.0,
        "ratio_vs_pgbench": 1.5,
        "ratio_vs_healthz": 0.75,
        "rows_match": True,
        "server_rss_mb": 60.0,
        "p99_vs_pgbench": 0.889,
        "cluster_ratio_vs_pgbench": 1.2,
        "cluster_direct_ratio_vs_pgbench": 1.3,
    }
    assert {key: results[key] for key in expected} == expected
    assert all(target["met"] for target in results["targets"].values())


def test_one_mismatched_run_fails_rows_match() -> None:
    """Given one run whose rows differ from its 2xx count, then rows_match is false and the table says so."""
    runs = [
        Measurement("post_app_group_c64", "group", 64, load(100), rows_new=999, rows_match=False),
        Measurement("post_app_sqlite", "sqlite", 64, load(100), rows_new=1000, rows_match=True),
    ]
    results = build(runs, 64, [], {"cores": 2}, {})
    assert (results["rows_match"], "MISMATCH (999 rows, 1000 2xx, 0 unanswered)" in markdown_table(results)) == (
        False,
        True,
    )


def test_rows_agree_exactly_unless_requests_were_left_unanswered() -> None:
    """Given no unanswered request, then rows must equal the 2xx; given 2 unanswered, up to 2 more rows
    (their commits landed after wrk stopped) still agree, but a missing row never does."""
    exact = load(100)
    cut_short = LoadResult(exact.requests, 10.0, 0, 0, 1.0, 5.0, 10.0, 15.0, unfinished=2)
    assert [
        rows_agree(1000, exact),
        rows_agree(1001, exact),
        rows_agree(1002, cut_short),
        rows_agree(1003, cut_short),
        rows_agree(999, cut_short),
    ] == [True, False, True, False, False]


def test_settings_read_the_bench_knobs() -> None:
    """Given BENCH_* variables, then the run uses them and keeps defaults for the rest."""
    settings = BenchSettings.from_env({"BENCH_SECONDS": "3", "BENCH_SWEEP": "1,8", "BENCH_SCAN_ROWS": ""})
    assert (settings.seconds, settings.sweep, settings.scan_rows, settings.connections) == (3, (1, 8), (), 64)
