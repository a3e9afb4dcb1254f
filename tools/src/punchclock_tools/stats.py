"""Percentiles of recorded latencies: the one definition the benchmark, the scaling run and the HA checks share.

The definition is nearest rank: the ``pct``-th percentile of n values is the ⌈pct/100 · n⌉-th smallest.
It is always a latency some request really took, so "p99 = 12 ms" reads "99 % of the requests took at
most 12 ms, and one took 12 ms". Linear interpolation (``statistics.quantiles``) answers a value between
two requests' that no request took, and on the few values of a two-second bucket or a failover window it
moves with the gap between the slowest two. The latencies of wrk's runs (bench/wrk.py) are wrk's own
percentiles, read from its output; every other percentile in ``results/`` comes from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float], pct: float) -> float | None:
    """The nearest-rank ``pct``-th percentile (0 to 100) of ``values``, in any order; None when there are
    none. ``pct`` 0 is the smallest value, 100 the largest."""
    if not 0 <= pct <= 100:
        raise ValueError(f"a percentile lies between 0 and 100, not {pct}")
    ordered = sorted(values)
    if not ordered:
        return None
    # Rounded before the ceiling: 99.9 * 41000 / 100 comes out a hair above 40959 in binary floating point.
    rank = math.ceil(round(pct * len(ordered) / 100, 6))
    return ordered[min(len(ordered), max(1, rank)) - 1]
