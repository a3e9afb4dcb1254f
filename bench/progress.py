"""Where a ``make bench`` run is: "run k of N" with the time left, one line as each run starts and ends.

The plan (``bench.run.plan``) lists every run with the seconds of load its settings give it. The time left is
the plan's remaining seconds scaled by how long the finished runs really took against their plan, so service
start-ups, row counts and table fills the plan cannot know are learnt as the run goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """One run of the plan: its key (a Measurement's name, or ``scan_<rows>``) and its seconds of load."""

    name: str
    seconds: float


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class Progress:
    """Prints ``bench: run k of N`` as each planned run starts (with the time left) and as it ends."""

    def __init__(
        self, steps: Sequence[Step], say: Callable[[str], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.planned = {step.name: step.seconds for step in steps}
        self.total = len(steps)
        self.say = say
        self.clock = clock
        self.started = clock()
        self.done = 0
        self.planned_done = 0.0
        self.current: tuple[str, float] | None = None

    def left(self) -> float:
        """Seconds the runs not yet finished should take, at the pace the finished ones kept."""
        remaining = sum(self.planned.values()) - self.planned_done
        pace = (self.clock() - self.started) / self.planned_done if self.planned_done else 1.0
        return remaining * pace

    def begin(self, name: str, description: str) -> None:
        self.current = (name, self.clock())
        self.say(
            f"bench: run {self.done + 1} of {self.total}: {description} "
            f"({duration(self.clock() - self.started)} in, about {duration(self.left())} left)"
        )

    def end(self, headline: str) -> None:
        assert self.current is not None, "end() without begin()"
        name, began = self.current
        self.current = None
        self.done += 1
        self.planned_done += self.planned.get(name, 0.0)
        self.say(f"bench: run {self.done} of {self.total} took {duration(self.clock() - began)}: {headline}")
