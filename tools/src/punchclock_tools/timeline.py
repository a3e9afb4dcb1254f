"""A failure scenario's timeline: the load's answers per 100 ms by status, drawn as a PNG.

Each answer is counted in the bucket of the moment it came back (a receipt's ``acked_at``, a failure's ``at``):
``201``, ``503``, any ``other`` status, or ``no response`` (the request raised). The plot marks when the fault
was injected (``Outcome.event_at``), when the scenario saw the new leader, and the longest stall (the widest gap
between consecutive acknowledgements, as ``Outcome.longest_stall`` measures it).
"""

from __future__ import annotations

import itertools
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

from punchclock_tools.load import Outcome

BUCKET_SECONDS = 0.1
STATUSES = ("201", "503", "other", "no response")
COLOURS = {"201": "tab:green", "503": "tab:orange", "other": "tab:red", "no response": "black"}


def status_of(code: int | None) -> str:
    if code is None:
        return "no response"
    return str(code) if str(code) in STATUSES else "other"


@dataclass(frozen=True)
class Timeline:
    """Answers per bucket by status; every time is in seconds from the start of the load."""

    bucket_seconds: float
    counts: dict[str, list[int]]  # status -> answers that came back in each bucket
    stall: tuple[float, float]  # start and end of the longest time without an acknowledgement
    fault: float | None  # when the scenario injected its fault (Outcome.event_at)
    leader_change: float | None  # when the scenario saw the new leader

    @property
    def buckets(self) -> int:
        return len(self.counts["201"])


def longest_stall(outcome: Outcome) -> tuple[float, float]:
    """Where the longest gap between acknowledgements (or the load's start or end) lies, as ``(start, end)``."""
    moments = sorted([outcome.started, *(r.acked_at for r in outcome.receipts), outcome.ended])
    start, end = max(itertools.pairwise(moments), key=lambda pair: pair[1] - pair[0], default=(0.0, 0.0))
    return start - outcome.started, end - outcome.started


def timeline(
    outcome: Outcome, leader_change_after_fault: float | None = None, bucket_seconds: float = BUCKET_SECONDS
) -> Timeline:
    """Count the outcome's answers per bucket; ``leader_change_after_fault`` is seconds after ``event_at``."""
    answers = [(r.acked_at, "201") for r in outcome.receipts] + [(f.at, status_of(f.status)) for f in outcome.failures]
    last = max([outcome.ended, *(at for at, _ in answers)])
    size = max(1, math.ceil(round((last - outcome.started) / bucket_seconds, 9)))
    counts = {status: [0] * size for status in STATUSES}
    for at, status in answers:
        counts[status][min(size - 1, max(0, int((at - outcome.started) / bucket_seconds)))] += 1
    fault = outcome.event_at - outcome.started if outcome.event_at is not None else None
    change = fault + leader_change_after_fault if fault is not None and leader_change_after_fault is not None else None
    return Timeline(bucket_seconds, counts, longest_stall(outcome), fault, change)


def draw(line: Timeline, path: Path, title: str, leader_label: str = "new leader seen") -> Path:
    """Write ``line`` as a PNG: stacked bars per bucket, the fault, the leader change and the stall marked.

    The x axis counts seconds from the fault when there is one, from the start of the load otherwise.
    """
    # Imported here: matplotlib is in the dev group, not a dependency of the tooling, and counting needs none.
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    origin = line.fault or 0.0
    lefts = [n * line.bucket_seconds - origin for n in range(line.buckets)]
    fig, axes = plt.subplots(figsize=(11, 4.5))
    bottom = [0] * line.buckets
    for status in STATUSES:  # every status in the legend, with its total, even when none came back
        counts = line.counts[status]
        axes.bar(
            lefts,
            counts,
            width=line.bucket_seconds,
            bottom=bottom,
            align="edge",
            color=COLOURS[status],
            label=f"{status} ({sum(counts)})",
            linewidth=0,
        )
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    start, end = line.stall
    axes.axvspan(
        start - origin, end - origin, color="tab:blue", alpha=0.15, zorder=0, label=f"longest stall {end - start:.2f} s"
    )
    if line.fault is not None:
        axes.axvline(0, color="tab:red", linestyle="--", label="fault injected")
    if line.leader_change is not None:
        axes.axvline(
            line.leader_change - origin,
            color="tab:purple",
            linestyle="-.",
            label=f"{leader_label} (+{line.leader_change - origin:.2f} s)",
        )
    axes.set_xlabel("seconds from the fault" if line.fault is not None else "seconds from the start of the load")
    axes.set_ylabel(f"answers per {line.bucket_seconds * 1000:.0f} ms")
    axes.set_xlim(lefts[0], lefts[-1] + line.bucket_seconds)
    axes.set_ylim(bottom=0)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes.set_title("\n".join(textwrap.fill(part, 110) for part in title.splitlines()), fontsize="medium")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
