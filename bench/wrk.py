"""Drive wrk (Debian's package) with ``stamp.lua`` and read back its one-line JSON summary."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from bench.model import LoadResult
from bench.processes import run_to_end

SCRIPT = Path(__file__).resolve().parent / "stamp.lua"
TIMEOUT = "5s"  # a request slower than this counts as a wrk timeout


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run `scripts/apt-ensure wrk` (make bench does)")
    return found


def run_wrk(
    base_url: str, method: str, path: str, connections: int, seconds: int, log: Path, tail: int = 1
) -> LoadResult:
    """``connections`` keep-alive connections send ``method path`` back to back for ``seconds``; wrk idles
    ``tail`` more seconds so the last requests finish before it closes its connections (see stamp.lua)."""
    threads = max(1, min(2, connections))
    argv = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds + tail}s",
        f"--timeout={TIMEOUT}",
        "-s",
        str(SCRIPT),
        base_url,
        "--",
        method,
        path,
        str(seconds),
        str(connections),
    ]
    text, _, client_cpu_s = run_to_end(argv, log.with_suffix(".out"), log, seconds + tail + 60)
    return dataclasses.replace(parse_wrk(text), client_cpu_s=round(client_cpu_s, 2))


def parse_wrk(text: str) -> LoadResult:
    """The ``WRK_RESULT {...}`` line printed by ``stamp.lua``'s done()."""
    for line in text.splitlines():
        if line.startswith("WRK_RESULT "):
            data = json.loads(line.removeprefix("WRK_RESULT "))
            return LoadResult(
                requests=data["requests"],
                window_s=data["window_s"],
                non_2xx=data["errors_status"],
                socket_errors=data["errors_connect"]
                + data["errors_read"]
                + data["errors_write"]
                + data["errors_timeout"],
                unfinished=data["unfinished"],
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                p999_ms=data["p999_us"] / 1000,
                max_ms=data["latency_max_us"] / 1000,
            )
    raise RuntimeError(f"wrk printed no result:\n{text[-2000:]}")
