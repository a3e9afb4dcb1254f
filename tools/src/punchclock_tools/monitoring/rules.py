"""A copy of the production rule files with every duration divided by one factor, so that alerts meant to fire
after minutes or hours fire after seconds on a real failure.

Only the rules' timing moves: ``for:``, a group's ``interval:``, range selectors (``rate(x[5m])``), subqueries and
``offset``. Thresholds, labels and annotations are kept as written, and so are record names (``...:ratio_rate1h``
now holds the scaled window). A duration never drops below ``floor`` seconds, so a range keeps enough scrapes
for ``rate()`` to answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
# A range selector or subquery: [5m], [1h:30s], [30m:]
RANGE = re.compile(r"\[([0-9smhdwy]+)(?::([0-9smhdwy]*))?\]")
OFFSET = re.compile(r"\boffset\s+([0-9smhdwy]+)")


@dataclass(frozen=True)
class Shortening:
    """Divide every duration by ``factor``; keep each at least ``floor`` seconds (``for:`` may reach 0)."""

    factor: float = 30.0
    floor: float = 5.0


def seconds(duration: str) -> float:
    """``1h30m`` -> 5400.0, in Prometheus's duration syntax."""
    parts = DURATION.findall(duration)
    if not parts or "".join(number + unit for number, unit in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(number) * UNITS[unit] for number, unit in parts)


def duration(value: float) -> str:
    """Seconds back into Prometheus's syntax, to the millisecond."""
    millis = max(0, round(value * 1000))
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def scaled(text: str, shortening: Shortening, floor: float | None = None) -> str:
    least = shortening.floor if floor is None else floor
    return duration(max(least, seconds(text) / shortening.factor))


def shorten_expr(expr: str, shortening: Shortening) -> str:
    def range_(match: re.Match[str]) -> str:
        window, step = match.group(1), match.group(2)
        if step is None:
            return f"[{scaled(window, shortening)}]"
        return f"[{scaled(window, shortening)}:{scaled(step, shortening) if step else ''}]"

    expr = RANGE.sub(range_, expr)
    return OFFSET.sub(lambda m: f"offset {scaled(m.group(1), shortening, floor=0)}", expr)


def shorten_rule(rule: dict[str, Any], shortening: Shortening) -> dict[str, Any]:
    short = {**rule, "expr": shorten_expr(str(rule["expr"]), shortening)}
    if "for" in rule:
        short["for"] = scaled(str(rule["for"]), shortening, floor=0)
    return short


def shorten_groups(document: dict[str, Any], shortening: Shortening) -> dict[str, Any]:
    groups = []
    for group in document["groups"]:
        short = {**group, "rules": [shorten_rule(rule, shortening) for rule in group["rules"]]}
        if "interval" in group:
            short["interval"] = scaled(str(group["interval"]), shortening, floor=1)
        groups.append(short)
    return {**document, "groups": groups}


class _Dumper(yaml.SafeDumper):
    """Multi-line expressions as ``|`` blocks, so the shortened files read like the originals."""


_Dumper.add_representer(
    str,
    lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None),
)


def write_shortened(sources: list[Path], target_dir: Path, shortening: Shortening) -> list[Path]:
    """Each rule file of ``sources`` shortened into ``target_dir`` under its own name; returns the new paths."""
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        document = yaml.safe_load(source.read_text())
        target = target_dir / source.name
        body = yaml.dump(shorten_groups(document, shortening), Dumper=_Dumper, sort_keys=False, width=1000)
        target.write_text(f"# {source.name} with every duration divided by {shortening.factor:g}\n{body}")
        written.append(target)
    return written
