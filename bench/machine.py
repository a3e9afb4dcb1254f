"""Where the numbers were taken: cores, memory, load, and the versions of every component measured."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from punchclock_tools import postgres


def _first_line(argv: list[str]) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    return (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else ""


def _package(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [float(part) for part in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_model() -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    return match.group(1).strip() if match else platform.processor()


def memory_gib() -> float:
    match = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return round(int(match.group(1)) / 1024 / 1024, 1) if match else 0.0


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    return _first_line(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])


def describe() -> dict[str, Any]:
    """A JSON-ready description of this machine and the software under test."""
    wrk = shutil.which("wrk")
    return {
        "cores": os.cpu_count(),
        "cpu": cpu_model(),
        "memory_gib": memory_gib(),
        "kernel": platform.release(),
        "os": _first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python": platform.python_version(),
        "postgresql": _first_line([str(postgres.PG_BIN / "postgres"), "--version"]),
        "pgbench": _first_line([str(postgres.PG_BIN / "pgbench"), "--version"]),
        "wrk": _first_line([wrk, "--version"]) if wrk else "not found",
        "punchclock": _package("punchclock"),
        "uvicorn": _package("uvicorn"),
        "starlette": _package("starlette"),
        "asyncpg": _package("asyncpg"),
        "git_commit": git_commit(),
        "loadavg_before": loadavg(),
    }
