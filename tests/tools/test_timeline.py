"""The failover timeline: answers per 100 ms by status from a load's Outcome, and its PNG (no cluster needed)."""

from __future__ import annotations

from pathlib import Path

from punchclock_tools.load import Failure, Outcome, Receipt
from punchclock_tools.timeline import draw, longest_stall, timeline


def synthetic() -> Outcome:
    """One second of load from t=100: two 201s at 0.05 s, a fault at 0.3 s, a 503 at 0.35 s and a lost
    connection at 0.42 s, a 500 at 0.58 s, then 201s again at 0.71 and 0.95 s; the load ends at 1.0 s."""
    receipts = [Receipt(n, None, "2026-12-01T00:00:00Z", 100 + at) for n, at in enumerate((0.05, 0.06, 0.71, 0.95))]
    failures = [
        Failure(100.35, 503, "budget", "2"),
        Failure(100.42, None, "ConnectError()"),
        Failure(100.58, 500, "oops"),
    ]
    return Outcome(started=100.0, ended=101.0, event_at=100.3, receipts=receipts, failures=failures)


def test_answers_are_counted_per_100_ms_by_status() -> None:
    """Given the synthetic load, then each answer lands in the 100 ms bucket it came back in, by status."""
    line = timeline(synthetic(), leader_change_after_fault=0.25)
    assert line.counts == {
        "201": [2, 0, 0, 0, 0, 0, 0, 1, 0, 1],
        "503": [0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        "other": [0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        "no response": [0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
    }


def test_fault_leader_change_and_longest_stall_are_placed_from_the_start_of_the_load() -> None:
    """Given a fault at 0.3 s and a new leader 0.25 s later, then they sit at 0.3 and 0.55 s, and the longest
    stall runs from the last 201 before the fault (0.06 s) to the first after it (0.71 s), as Outcome says."""
    outcome = synthetic()
    line = timeline(outcome, leader_change_after_fault=0.25)
    start, end = longest_stall(outcome)
    assert [round(v, 3) for v in (line.fault or 0, line.leader_change or 0, start, end)] == [0.3, 0.55, 0.06, 0.71]
    assert round(end - start, 6) == round(outcome.longest_stall(), 6)


def test_png_is_written(tmp_path: Path) -> None:
    """Given the synthetic load, when it is drawn, then a non-empty PNG is written where asked."""
    path = draw(timeline(synthetic(), 0.25), tmp_path / "plots" / "scenario.png", "synthetic\nfigures", "new leader")
    assert (path, path.read_bytes()[:8], path.stat().st_size > 1000) == (
        tmp_path / "plots" / "scenario.png",
        b"\x89PNG\r\n\x1a\n",
        True,
    )


def test_a_load_with_no_fault_is_drawn_from_its_start(tmp_path: Path) -> None:
    """Given a load without a fault, then no fault or leader change is placed and the PNG is still written."""
    outcome = synthetic()
    outcome.event_at = None
    line = timeline(outcome, leader_change_after_fault=0.25)
    assert (line.fault, line.leader_change, draw(line, tmp_path / "x.png", "no fault").stat().st_size > 0) == (
        None,
        None,
        True,
    )
