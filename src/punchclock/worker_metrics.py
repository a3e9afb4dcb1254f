"""One scrape for several worker processes: prometheus_client's multiprocess mode.

``serve`` with ``PUNCHCLOCK_WORKERS`` > 1 makes a fresh directory before it forks the workers. Each worker's
instruments write their values to files of their own in it (memory-mapped, one per process and kind), and the
worker that answers a scrape merges every file (``exposition``). A worker that exits is marked dead, which drops
its ``live*`` gauges while its counts stay in the totals; the directory goes when ``serve`` exits. One process
serving alone keeps prometheus_client's plain in-memory values and never touches this module.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# prometheus_client's own variable: its file-backed values read the directory from it in each worker.
DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_directory() -> Iterator[Path]:
    """A fresh, empty metrics directory for the workers forked inside the block; removed at its end.

    prometheus_client picks file-backed values when it is imported, from the environment; punchclock is imported
    by then, so the value class is switched here, before any worker builds its instruments, and restored after."""
    directory = Path(tempfile.mkdtemp(prefix="punchclock-metrics-"))
    previous_variable = os.environ.get(DIRECTORY_VARIABLE)
    previous_class = values.ValueClass
    os.environ[DIRECTORY_VARIABLE] = str(directory)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    try:
        yield directory
    finally:
        values.ValueClass = previous_class
        if previous_variable is None:
            os.environ.pop(DIRECTORY_VARIABLE, None)
        else:
            os.environ[DIRECTORY_VARIABLE] = previous_variable
        shutil.rmtree(directory, ignore_errors=True)


def exposition(directory: Path) -> CollectorRegistry:
    """A registry that renders every worker's metrics from ``directory``, merged, and nothing else."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def worker_exited(pid: int, directory: Path) -> None:
    """Drop the exited worker's ``live*`` gauges (its queue, pool and readiness); its counts stay."""
    mark_process_dead(pid, str(directory))  # type: ignore[no-untyped-call]
