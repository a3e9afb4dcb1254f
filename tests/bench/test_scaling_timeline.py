"""The scaling run's figures: its timeline per bucket and the throughput of each instance count."""

from __future__ import annotations

from bench.scaling import SCHEDULE, by_instances
from bench.scaling_timeline import Change, buckets, window

from punchclock_tools.load import Failure, Outcome, Receipt


def synthetic() -> Outcome:
    """Four seconds of load from t=50: three 201s in the first second, one slow one ending at 2.5 s, a 503 at
    3.2 s; a second instance serving from 2.0 s."""
    receipts = [
        Receipt(n, None, "2026-12-01T00:00:00Z", 50 + at, 50 + at - 0.1) for n, at in enumerate((0.2, 0.4, 0.6))
    ]
    receipts.append(Receipt(3, None, "2026-12-01T00:00:01Z", 52.5, 51.5))
    latencies = [(50.1, 0.1), (50.3, 0.1), (50.5, 0.1), (51.5, 1.0), (53.1, 0.1)]
    return Outcome(
        started=50.0, ended=54.0, receipts=receipts, failures=[Failure(53.2, 503, "full")], latencies=latencies
    )


def test_each_bucket_has_the_schedule_in_force_and_what_came_back() -> None:
    """Given the synthetic load in 1 s buckets, then each bucket carries the offered rate and instances in
    force at its middle, the requests sent, the 201s back, the failures and the p99 of those that ended."""
    changes = [Change(0.0, 10.0, 1, "rate"), Change(2.0, 10.0, 2, "scale")]
    line = buckets(synthetic(), changes, size=1.0)
    assert [(b.instances, b.sent, b.throughput, b.failed, b.p99_ms) for b in line] == [
        (1, 3.0, 3.0, 0, 100.0),
        (1, 1.0, 0.0, 0, None),
        (2, 0.0, 1.0, 0, 1000.0),
        (2, 1.0, 0.0, 1, 100.0),
    ]
    assert {b.offered for b in line} == {10.0}


def test_a_window_counts_the_201s_and_the_p99_between_two_moments() -> None:
    """Given the first second, then three 201s came back in it and its p99 is 100 ms."""
    assert window(synthetic(), 0.0, 1.0) == {"start": 0.0, "end": 1.0, "throughput": 3.0, "p99_ms": 100.0}


def test_each_instance_count_is_measured_where_its_step_offers_more_than_it_carries() -> None:
    """Given each step's figures, then one, two and three instances are read from the steps offering more than
    they carry, and each ratio is to one instance's throughput."""
    steps = [
        {"step": n + 1, "instances": count, "throughput": 10.0 * n, "p99_ms": 1.0}
        for n, (_, count) in enumerate(SCHEDULE)
    ]
    saturated = [n + 1 for n, (worth, count) in enumerate(SCHEDULE) if worth > count]
    found = by_instances(steps)
    assert [found[str(count)]["step"] for count in (1, 2, 3)] == saturated
    assert found["1"]["ratio_to_one"] == 1.0
    assert found["3"]["ratio_to_one"] == round(
        steps[saturated[2] - 1]["throughput"] / steps[saturated[0] - 1]["throughput"], 2
    )
