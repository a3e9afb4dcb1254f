"""Several processes' loads merge into one outcome that keeps every answer."""

from __future__ import annotations

from punchclock_tools.load import Failure, Outcome, Receipt
from punchclock_tools.load_processes import merge


def test_merged_outcome_keeps_every_answer_in_the_order_it_came() -> None:
    """Given two processes' outcomes, one with a receipt from before the shared start, then the merged one
    starts at the shared start, ends with the last, and holds every receipt, failure and latency in time order."""
    first = Outcome(started=9.0, ended=20.0, receipts=[Receipt(2, "k", "t", 12.0)], latencies=[(11.0, 1.0)])
    second = Outcome(
        started=9.5,
        ended=21.0,
        receipts=[Receipt(1, None, "t", 9.8), Receipt(3, None, "t", 15.0)],
        failures=[Failure(14.0, 503, "full")],
        latencies=[(9.7, 0.1), (14.0, 1.0)],
    )
    merged = merge([first, second], started=10.0)
    assert (merged.started, merged.ended) == (10.0, 21.0)
    assert [r.id for r in merged.receipts] == [1, 2, 3]
    assert [f.at for f in merged.failures] == [14.0]
    assert merged.latencies == [(9.7, 0.1), (11.0, 1.0), (14.0, 1.0)]
