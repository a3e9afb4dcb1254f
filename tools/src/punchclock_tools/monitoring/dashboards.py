"""The Grafana dashboards' queries as Prometheus can run them: Grafana's variables filled in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    expr: str


def queries(dashboard: Path, rate_interval: str = "5m") -> list[PanelQuery]:
    """Every panel target's expression, with ``$__rate_interval`` set to ``rate_interval`` and the ``namespace``,
    ``job`` and ``scope`` variables matching everything (as "All" does)."""
    board = json.loads(dashboard.read_text())
    found = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", rate_interval)
            for variable in ("$namespace", "$job", "$scope"):
                expr = expr.replace(variable, ".*")
            found.append(PanelQuery(panel["title"], expr))
    return found
