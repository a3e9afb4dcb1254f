"""The committed results files, read for the templates; a run and its earlier runs side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from punchclock_tools.docs.provenance import RESULTS

NAMES = ("bench", "ha", "provision", "restore-drill", "manual", "scaling")  # every results file the docs read
PROVENANCE_KEYS = ("produced_at", "commit", "dirty", "command", "transcribed")


@dataclass(frozen=True)
class Results:
    """One results file: its latest run (``data``) and the earlier runs kept beside it."""

    name: str
    data: dict[str, Any]

    @property
    def history(self) -> list[dict[str, Any]]:
        """The latest run, then the earlier ones, newest first."""
        return [self.data, *self.data.get("earlier_runs", [])]

    def __getattr__(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise AttributeError(f"results/{self.name}.json has no {key!r}") from None

    def record(self, scenario: str) -> dict[str, Any]:
        """The latest run's record of one scenario (JSON-lines reports)."""
        return _record(self.data, scenario)

    def previous(self, scenario: str) -> dict[str, Any] | None:
        """The run before the latest's record of one scenario, if that run is kept and has it."""
        earlier = self.data.get("earlier_runs", [])
        if not earlier:
            return None
        try:
            return _record(earlier[0], scenario)
        except KeyError:
            return None

    def total(self, key: str) -> int:
        """``key`` summed over every record of every recorded run (``lost``, ``duplicates``)."""
        return sum(int(r.get(key, 0)) for run in self.history for r in run.get("records", []))

    def each(self, scenario: str, key: str) -> list[Any]:
        """``key`` of one scenario in every recorded run that has it."""
        found = []
        for run in self.history:
            record = next((r for r in run.get("records", []) if r.get("scenario") == scenario), None)
            if record is not None and key in record:
                found.append(record[key])
        if not found:
            raise KeyError(f"results/{self.name}.json: no run records {key!r} for {scenario}")
        return found


def _record(run: dict[str, Any], scenario: str) -> dict[str, Any]:
    for record in run.get("records", []):
        if record.get("scenario") == scenario:
            return dict(record)
    raise KeyError(f"no record of {scenario}")


def load(name: str, results: Path = RESULTS) -> Results:
    return Results(name, json.loads((results / f"{name}.json").read_text()))


def load_all(results: Path = RESULTS) -> dict[str, Results]:
    return {name: load(name, results) for name in NAMES}
