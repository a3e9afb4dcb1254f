"""A fixed CPU quota per app instance: one cgroup (v1 ``cpu`` controller) each, made and removed by name.

Each instance gets ``/sys/fs/cgroup/cpu/punchclock-<digest of the state directory>-<app>``, so two clusters on
one machine never share or remove each other's. Its ``cpu.cfs_quota_us`` over ``cpu.cfs_period_us`` is the
number of cores the instance may use. supervisord starts the instance through ``command()``: a shell that
writes its own pid to the cgroup's ``cgroup.procs`` and then execs ``punchclock serve``, so every start and
restart of the program lands in its cgroup, and the pid supervisord signals is the server itself.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 100_000  # the kernel's default period: a quota of 0.25 cores is 25 ms in every 100 ms
# An instance starts (imports, connects, migrates nothing) with this much, and runs under its quota from the
# moment its /readyz passes: under a quota of a few hundredths of a core, starting alone would take minutes.
# Kubernetes' startup CPU boost does the same for pods.
STARTUP_CORES = 1.0
PREFIX = "punchclock"


def available(root: Path = ROOT) -> bool:
    """Whether the v1 cpu controller is mounted here and this process may make cgroups in it."""
    return (root / "cpu.cfs_quota_us").exists() and os.access(root, os.W_OK)


def path_for(state_dir: str, app: str, root: Path = ROOT) -> Path:
    """The cgroup of instance ``app`` of the cluster kept in ``state_dir``."""
    digest = hashlib.sha256(state_dir.encode()).hexdigest()[:8]
    return root / f"{PREFIX}-{digest}-{app}"


def create(path: Path, cores: float) -> None:
    """Make the cgroup (or keep it) and set its quota to ``cores`` of CPU time (``STARTUP_CORES`` to start)."""
    if cores <= 0:
        raise ValueError(f"a CPU quota is a positive number of cores, not {cores}")
    if not available(path.parent):
        raise RuntimeError(f"no writable cgroup v1 cpu controller at {path.parent}: cannot set a CPU quota")
    path.mkdir(exist_ok=True)
    set_quota(path, cores)


def set_quota(path: Path, cores: float) -> None:
    (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
    (path / "cpu.cfs_quota_us").write_text(str(round(cores * PERIOD_US)))


def quota(path: Path) -> float | None:
    """The cores the cgroup may use now (None: no quota)."""
    value = int((path / "cpu.cfs_quota_us").read_text())
    return None if value < 0 else value / int((path / "cpu.cfs_period_us").read_text())


def pids(path: Path) -> list[int]:
    try:
        return [int(line) for line in (path / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def stat(path: Path) -> dict[str, int]:
    """The kernel's throttling counters: ``nr_periods``, ``nr_throttled``, ``throttled_time`` (ns)."""
    try:
        lines = (path / "cpu.stat").read_text().splitlines()
    except FileNotFoundError:
        return {}
    return {key: int(value) for key, value in (line.split() for line in lines if line.strip())}


def remove(path: Path, timeout: float = 10) -> None:
    """Remove the cgroup once its processes are gone (they were stopped first); absent is fine."""
    deadline = time.monotonic() + timeout
    while path.exists():
        try:
            path.rmdir()
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"cgroup {path} still holds {pids(path)}; not removed") from None
            time.sleep(0.1)


def command(program: str, path: Path | None) -> str:
    """supervisord's ``command=`` for ``program``: as is without a cgroup, else entering ``path`` first."""
    if path is None:
        return program
    script = f"echo $$ > {shlex.quote(str(path / 'cgroup.procs'))} && exec {program}"
    return f"/bin/sh -c {shlex.quote(script)}"
