"""``make bench``'s progress lines: the plan of runs, "run k of N" and the time left (no processes needed)."""

from __future__ import annotations

from bench.cluster import BRING_UP_SECONDS
from bench.progress import Progress, Step, duration
from bench.run import plan
from bench.settings import BenchSettings


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plan_lists_every_run_in_order_with_its_seconds_of_load() -> None:
    """Given 10 s runs with 2 s warm-up, 1 s tail, a 2-point sweep, one scan size and no extra runs, then the
    plan is pgbench, healthz, the sweep, per-request, the scan, SQLite and the cluster's three runs, each with
    its configured seconds (the cluster's first with its bring-up)."""
    settings = BenchSettings(
        seconds=10,
        warmup_seconds=2,
        tail_seconds=1,
        connections=8,
        sweep=(1, 8),
        scan_rows=(5000,),
        scan_seconds=3,
        extra_runs=False,
    )
    assert plan(settings) == [
        Step("pgbench_commit", 14),  # warm-up 2 + 1 connect allowance, then 10 + 1
        Step("healthz", 14),  # warm-up 2 + 1 tail, then 10 + 1
        Step("post_app_group_c8", 14),
        Step("post_app_group_c1", 14),
        Step("post_app_per_request", 14),
        Step("scan_5000", 8),  # first and deep page, 3 + 1 each
        Step("post_app_sqlite", 14),
        Step("cluster_pgbench_commit", 14 + BRING_UP_SECONDS),
        Step("cluster_post_app_balancer", 14),
        Step("cluster_post_app_direct", 14),
    ]


def test_time_left_follows_the_pace_of_the_finished_runs() -> None:
    """Given three 10 s runs of which the first took 20 s, when the second starts, then it is run 2 of 3 with
    about 40 s left (20 s of plan at twice the pace), and its end line carries its duration and headline."""
    clock, lines = Clock(), list[str]()
    progress = Progress([Step("a", 10), Step("b", 10), Step("c", 10)], lines.append, clock)
    progress.begin("a", "first")
    clock.now += 20
    progress.end("1,000/s")
    progress.begin("b", "second")
    clock.now += 5
    progress.end("2,000/s")
    assert lines == [
        "bench: run 1 of 3: first (0 s in, about 30 s left)",
        "bench: run 1 of 3 took 20 s: 1,000/s",
        "bench: run 2 of 3: second (20 s in, about 40 s left)",
        "bench: run 2 of 3 took 5 s: 2,000/s",
    ]


def test_durations_read_as_seconds_minutes_or_hours() -> None:
    """Given 42 s, 185 s and 3720 s, then they read 42 s, 3 min 05 s and 1 h 02 min."""
    assert [duration(42), duration(185), duration(3720)] == ["42 s", "3 min 05 s", "1 h 02 min"]
