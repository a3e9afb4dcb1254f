"""The scaling run's timeline: per bucket the offered load, the instances serving, throughput and p99.

Times are seconds from the start of the load. The offered load is the schedule's rate in force; ``sent`` is
what the load's workers really started (each waits for its answer, so a saturated pool slows them down);
throughput is the ``201``s that came back in the bucket; p99 is over the requests that ended in it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from punchclock_tools.load import Outcome
from punchclock_tools.stats import percentile

BUCKET_SECONDS = 2.0


@dataclass(frozen=True)
class Change:
    """One step of the schedule as it happened: from ``at`` the rate and the instances in force."""

    at: float
    rate: float
    instances: int
    what: str  # "rate" or "scale", for the picture


def in_force(changes: list[Change], moment: float) -> Change:
    """The last change at or before ``moment`` (the first one before it starts)."""
    return max((c for c in changes if c.at <= moment), key=lambda c: c.at, default=changes[0])


@dataclass(frozen=True)
class Bucket:
    start: float
    offered: float
    instances: int
    sent: float  # per second
    throughput: float  # 201s per second
    failed: int
    p99_ms: float | None


def buckets(outcome: Outcome, changes: list[Change], size: float = BUCKET_SECONDS) -> list[Bucket]:
    """The outcome cut into ``size``-second buckets, each with the schedule's state at its middle."""
    origin = outcome.started
    count = max(1, math.floor((outcome.ended - origin) / size))
    sent = [0] * count
    acked = [0] * count
    failed = [0] * count
    latencies: list[list[float]] = [[] for _ in range(count)]

    def index(at: float) -> int | None:
        i = math.floor((at - origin) / size)
        return i if 0 <= i < count else None

    for start, seconds in outcome.latencies:
        if (i := index(start)) is not None:
            sent[i] += 1
        if (i := index(start + seconds)) is not None:
            latencies[i].append(seconds)
    for receipt in outcome.receipts:
        if (i := index(receipt.acked_at)) is not None:
            acked[i] += 1
    for failure in outcome.failures:
        if (i := index(failure.at)) is not None:
            failed[i] += 1
    found = []
    for i in range(count):
        state = in_force(changes, (i + 0.5) * size)
        worst = percentile(latencies[i], 99)
        found.append(
            Bucket(
                start=i * size,
                offered=state.rate,
                instances=state.instances,
                sent=sent[i] / size,
                throughput=acked[i] / size,
                failed=failed[i],
                p99_ms=None if worst is None else round(worst * 1000, 1),
            )
        )
    return found


def window(outcome: Outcome, start: float, end: float) -> dict[str, Any]:
    """Throughput and p99 between two moments (seconds from the start): a plateau of the schedule."""
    origin = outcome.started
    acked = sum(1 for r in outcome.receipts if start <= r.acked_at - origin < end)
    ended = [s for t, s in outcome.latencies if start <= t + s - origin < end]
    worst = percentile(ended, 99)
    return {
        "start": round(start, 1),
        "end": round(end, 1),
        "throughput": round(acked / (end - start), 1),
        "p99_ms": None if worst is None else round(worst * 1000, 1),
    }


def as_json(items: list[Bucket] | list[Change]) -> list[dict[str, Any]]:
    return [asdict(item) for item in items]
