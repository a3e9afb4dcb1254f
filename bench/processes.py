"""Child processes the benchmark owns: each in its own process group, stopped by that group, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType


def spawn(
    argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group) with output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it is still there after ``grace`` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    # Children of the group leader (workers) may outlive it: sweep the group either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)


@contextlib.contextmanager
def interrupts_unwind() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt (as SIGINT already is), once, so ``finally`` blocks
    stop every child and remove every temporary directory; later signals are ignored while that runs."""
    names = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in names}

    def unwind(signum: int, frame: FrameType | None) -> None:
        for sig in names:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")

    for sig in names:
        signal.signal(sig, unwind)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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


class RssSampler:
    """Samples the RSS of a process tree in the background (``peak_process_mb``, ``peak_total_mb``) and
    the CPU time it used between enter and exit (``cpu_seconds``)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_process_kib = 0
        self.peak_total_kib = 0
        self.processes = 0
        self._ticks: dict[int, int] = {}
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = process_tree(self.pid)
            for pid in tree:
                self._ticks.setdefault(pid, cpu_ticks(pid))
            sizes = [rss_kib(pid) for pid in tree]
            if sizes:
                self.peak_process_kib = max(self.peak_process_kib, *sizes)
                self.peak_total_kib = max(self.peak_total_kib, sum(sizes))
                self.processes = max(self.processes, len(sizes))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._ticks = {pid: cpu_ticks(pid) for pid in process_tree(self.pid)}
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        used = sum(max(0, cpu_ticks(pid) - start) for pid, start in self._ticks.items())
        self.cpu_seconds = used / CLOCK_TICKS

    @property
    def peak_process_mb(self) -> float:
        return round(self.peak_process_kib / 1024, 1)

    @property
    def peak_total_mb(self) -> float:
        return round(self.peak_total_kib / 1024, 1)


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
