"""Formatting for figures in prose: thousands separators, fixed decimals, percentages, ranges.

A value is a number, or a range ``{"min": a, "max": b}`` (several runs summarised), or a list of numbers
(a figure over recorded runs): ranges and lists print as ``a-b`` with an en dash, or as one number when both ends agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

DASH = "\N{EN DASH}"  # between the ends of a range, as typographers write it


def bounds(value: Any) -> tuple[float, float]:
    """The smallest and largest number of a value (number, ``{"min", "max"}`` or list of either)."""
    if isinstance(value, bool):
        raise TypeError("a figure is a number, not a flag")
    if isinstance(value, int | float):
        return float(value), float(value)
    if isinstance(value, dict):
        return float(value["min"]), float(value["max"])
    if isinstance(value, Iterable) and not isinstance(value, str):
        ends = [bounds(item) for item in value]
        if not ends:
            raise ValueError("no figure to print: the list is empty")
        return min(low for low, _ in ends), max(high for _, high in ends)
    raise TypeError(f"not a figure: {value!r}")


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


def _each(value: Any, one: Callable[[float], str]) -> str:
    low, high = bounds(value)
    first, last = one(low), one(high)
    return first if first == last else f"{first}{DASH}{last}"


def num(value: Any, decimals: int = 0) -> str:
    """6137.4 -> ``6,137``; ``num(1)``: 139.74 -> ``139.7``."""
    return _each(value, lambda v: _number(v, decimals))


def s1(value: Any) -> str:
    """Seconds to one decimal: 8.94 -> ``8.9``."""
    return num(value, 1)


def pct(value: Any, decimals: int = 0) -> str:
    """A ratio as a percentage (without the sign): 0.547 -> ``55``."""
    return _each(value, lambda v: _number(100 * v, decimals))


def rounded(value: Any, step: float) -> str:
    """To the nearest ``step`` (for "about ..." figures): 7158 with 100 -> ``7,200``."""
    return _each(value, lambda v: _number(round(v / step) * step, 0))


def kb(value: Any) -> str:
    """Bytes as whole kilobytes (1000 bytes)."""
    return _each(value, lambda v: _number(v / 1000, 0))


def lowest(value: Any) -> float:
    return bounds(value)[0]


def highest(value: Any) -> float:
    return bounds(value)[1]


FILTERS: dict[str, Callable[..., Any]] = {
    "num": num,
    "s1": s1,
    "pct": pct,
    "rounded": rounded,
    "kb": kb,
    "lowest": lowest,
    "highest": highest,
}
