"""The server's own view of a run, from ``GET /metrics``: how many commits, how big, how many were slow."""

from __future__ import annotations

import re
import urllib.request
from dataclasses import dataclass

_SAMPLE = re.compile(
    r'^(punchclock_commit_(?:batch_size|duration_seconds)_(?:sum|count|bucket))(?:\{le="([^"]+)"\})? (\S+)$'
)
SLOW_COMMIT_SECONDS = "0.1"  # a bucket bound of punchclock_commit_duration_seconds


@dataclass(frozen=True)
class CommitStats:
    commits: float = 0.0
    stamps: float = 0.0  # sum of batch sizes
    fast_commits: float = 0.0  # commits that took at most SLOW_COMMIT_SECONDS

    def __sub__(self, other: CommitStats) -> CommitStats:
        return CommitStats(
            self.commits - other.commits, self.stamps - other.stamps, self.fast_commits - other.fast_commits
        )

    def __add__(self, other: CommitStats) -> CommitStats:
        return CommitStats(
            self.commits + other.commits, self.stamps + other.stamps, self.fast_commits + other.fast_commits
        )

    @property
    def mean_batch(self) -> float | None:
        return round(self.stamps / self.commits, 1) if self.commits else None

    @property
    def slow_commits(self) -> int:
        return int(self.commits - self.fast_commits)


def parse(text: str) -> CommitStats:
    values: dict[tuple[str, str | None], float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            values[(match.group(1), match.group(2))] = float(match.group(3))
    return CommitStats(
        commits=values.get(("punchclock_commit_batch_size_count", None), 0.0),
        stamps=values.get(("punchclock_commit_batch_size_sum", None), 0.0),
        fast_commits=values.get(("punchclock_commit_duration_seconds_bucket", SLOW_COMMIT_SECONDS), 0.0),
    )


def commit_stats(base_url: str) -> CommitStats | None:
    """The commit counters of a running server (None when /metrics does not answer)."""
    try:
        with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:  # noqa: S310 (loopback)
            return parse(response.read().decode())
    except OSError:
        return None
