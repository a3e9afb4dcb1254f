"""What the measured processes cost: peak RSS and CPU time of a process tree, read from ``/proc``."""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from collections.abc import Sequence
from pathlib import Path


def rss_kib(pid: int) -> int:
    """Resident set size of one process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """User plus system CPU time a process has used, in clock ticks (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (workers of a multi-process server)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pending.extend(int(child) for child in task.read_text().split())
    return tree


def process_trees(roots: Sequence[int]) -> list[int]:
    """Every process of the trees rooted at ``roots`` (several instances, or every node's PostgreSQL)."""
    return [pid for root in roots for pid in process_tree(root)]


class TreeSampler:
    """Samples the process trees rooted at ``pids`` in the background: peak RSS (``peak_process_mb``,
    ``peak_total_mb``) and the CPU time they used between enter and exit (``cpu_seconds``). Processes that
    start during the window count from zero; those that exit during it count up to their last sample."""

    def __init__(self, pids: int | Sequence[int], interval: float = 0.25) -> None:
        self.roots = [pids] if isinstance(pids, int) else list(pids)
        self.interval = interval
        self.peak_process_kib = 0
        self.peak_total_kib = 0
        self.processes = 0
        self._start: dict[int, int] = {}
        self._last: dict[int, int] = {}
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = process_trees(self.roots)
            for pid in tree:
                self._start.setdefault(pid, 0)
                self._last[pid] = cpu_ticks(pid)
            sizes = [rss_kib(pid) for pid in tree]
            if sizes:
                self.peak_process_kib = max(self.peak_process_kib, *sizes)
                self.peak_total_kib = max(self.peak_total_kib, sum(sizes))
                self.processes = max(self.processes, len(sizes))
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeSampler:
        self._start = {pid: cpu_ticks(pid) for pid in process_trees(self.roots)}
        self._last = dict(self._start)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        used = 0
        for pid, start in self._start.items():
            final = max(cpu_ticks(pid), self._last.get(pid, start))
            used += max(0, final - start)
        self.cpu_seconds = used / CLOCK_TICKS

    @property
    def peak_process_mb(self) -> float:
        return round(self.peak_process_kib / 1024, 1)

    @property
    def peak_total_mb(self) -> float:
        return round(self.peak_total_kib / 1024, 1)


def used_cpu_seconds(include_self: bool = False) -> float:
    """User plus system CPU time of every child this process has waited for so far (a load generator, once
    it exited and was reaped), and with ``include_self`` this process's own as well. Children still running
    do not count: take the difference of two readings around a child's whole life."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = usage.ru_utime + usage.ru_stime
    if include_self:
        own = resource.getrusage(resource.RUSAGE_SELF)
        used += own.ru_utime + own.ru_stime
    return used


def machine_busy_ticks() -> int:
    """Non-idle CPU time of the whole machine so far, in clock ticks (all processes, ours and others')."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal


class MachineSampler:
    """How many cores the whole machine kept busy on average between enter and exit (``cores``)."""

    def __init__(self) -> None:
        self.cores = 0.0
        self._start = (0, 0.0)

    def __enter__(self) -> MachineSampler:
        self._start = (machine_busy_ticks(), time.monotonic())
        return self

    def __exit__(self, *exc: object) -> None:
        ticks, began = self._start
        elapsed = time.monotonic() - began
        self.cores = (machine_busy_ticks() - ticks) / CLOCK_TICKS / elapsed if elapsed > 0 else 0.0
