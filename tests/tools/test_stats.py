"""The one percentile definition: nearest rank over values in any order."""

from __future__ import annotations

import pytest

from punchclock_tools.stats import percentile


def test_percentile_is_the_nearest_rank() -> None:
    """Given 1..100, then p50 is 50, p99 is 99, p100 the largest and p0 the smallest."""
    values = [float(n) for n in range(1, 101)]
    assert [percentile(values, p) for p in (0, 50, 99, 100)] == [1.0, 50.0, 99.0, 100.0]


def test_percentile_is_a_value_that_was_recorded() -> None:
    """Given two values, then p50 is the smaller one, not a value between them."""
    assert percentile([30.0, 10.0], 50) == 10.0


def test_percentile_ignores_the_order_of_the_values() -> None:
    """Given 1..1000 shuffled into an iterator, then p99.9 is 999 as it is for the sorted list."""
    values = (float(n) for n in [*range(1000, 500, -1), *range(1, 501)])
    assert percentile(values, 99.9) == 999.0


def test_percentile_rank_is_not_pushed_up_by_floating_point() -> None:
    """Given 41000 values, then p99.9 is the 40959th (99.9 * 41000 / 100 is a hair above 40959 in floats)."""
    assert percentile(range(1, 41001), 99.9) == 40959


def test_percentile_of_few_values_is_the_largest() -> None:
    """Given fewer than 100 values, then p99 is the largest of them."""
    assert percentile([0.2, 0.5, 0.1], 99) == 0.5


def test_percentile_of_nothing_is_none() -> None:
    """Given no values, then there is no percentile."""
    assert percentile([], 99) is None


def test_percentile_outside_0_to_100_is_refused() -> None:
    """Given 101, then percentile refuses it rather than clamping."""
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)
