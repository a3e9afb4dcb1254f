"""The HTTP server under punchclock, compared on ``POST /app`` in one run, alternating.

``uvicorn`` is ``punchclock serve`` (uvicorn, uvloop, httptools with the limits of ``punchclock.edge``);
``httptools`` is uvicorn's own httptools protocol without those limits (their cost); ``granian`` is granian
serving the same app.

    .tools/bin/uv pip install --python .venv/bin/python --target /tmp/granian-site granian==2.8.7
    BENCH_GRANIAN_SITE=/tmp/granian-site .venv/bin/python -m bench.servers [ROUNDS] [SECONDS]

granian is not a dependency of punchclock (issue 11 and 15 chose uvicorn by this run), so it is installed
aside and put on ``PYTHONPATH`` for the granian runs only. Each serves SQLite in development mode from
a fresh file each run, one process, 64 wrk connections; rounds alternate their order so the load of a busy
machine falls on all alike. Only ratios within one run mean anything, and on a loaded machine CPU per request
more than requests per second: a server with more threads than another gets more of a contended CPU.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.processes import spawn, stop, wait_until
from bench.sampling import cpu_ticks, process_tree
from bench.service import http_status
from bench.wrk import run_wrk
from punchclock_tools.paths import REPO
from punchclock_tools.ports import free_port


def granian_app() -> object:
    """The ASGI app as ``punchclock serve`` builds it, for ``granian --factory``."""
    from punchclock import logs
    from punchclock.app import create_app
    from punchclock.settings import load_settings

    settings = load_settings()
    # As punchclock's CLI does, so both servers write the same access line per request.
    logs.configure(settings.log_level, settings.log_format, no_color=bool(settings.no_color))
    return create_app(settings)


def _env(db: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUNCHCLOCK_", "DATABASE_URL", "DB_", "PORT"))}
    env.update(
        DATABASE_URL=f"sqlite:///{db}",
        PORT=str(port),
        PUNCHCLOCK_ACCESS_LOG="true",
        PUNCHCLOCK_LOG_FORMAT="json",
    )
    return env


def _tree_cpu_s(pid: int) -> float:
    return sum(cpu_ticks(p) for p in process_tree(pid)) / os.sysconf("SC_CLK_TCK")


def _one(server: str, workdir: Path, seconds: int, n: int) -> tuple[float, float]:
    """(POST /app per second, server CPU microseconds per request) of one round."""
    port = free_port()
    db = workdir / f"{server}-{n}.db"
    env = _env(db, port)
    if server == "uvicorn":
        argv = [sys.executable, "-m", "punchclock", "serve"]
    elif server == "httptools":
        # uvicorn's own httptools protocol, without punchclock.edge's limits: what the limits cost.
        argv = [sys.executable, "-m", "uvicorn", "--factory", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--loop", "uvloop", "--http", "httptools", "--ws", "none", "--no-access-log", "--log-level"]
        argv += ["warning", "bench.servers:granian_app"]
        import subprocess

        subprocess.run([sys.executable, "-m", "punchclock", "migrate"], env=env, check=True, capture_output=True)
    else:
        env["PYTHONPATH"] = os.pathsep.join([os.environ["BENCH_GRANIAN_SITE"], str(REPO)])
        argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--loop", "uvloop", "--no-ws", "--log-level", "warning"]
        argv += ["bench.servers:granian_app"]
        # granian runs no migrations; punchclock serve does them for SQLite at start, so run them the same way.
        import subprocess

        subprocess.run([sys.executable, "-m", "punchclock", "migrate"], env=env, check=True, capture_output=True)
    log = workdir / f"{server}-{n}.log"
    proc = spawn(argv, log, env=env, cwd=REPO)
    try:
        url = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: http_status(url + "/readyz") == 200, timeout=60, interval=0.2):
            raise RuntimeError(f"{server} did not become ready: {log.read_text()[-2000:]}")
        cpu_before = _tree_cpu_s(proc.pid)
        result = run_wrk(url, "POST", "/app", 64, seconds, workdir / f"wrk-{server}-{n}.log")
        cpu_s = _tree_cpu_s(proc.pid) - cpu_before
        if result.non_2xx or result.socket_errors:
            raise RuntimeError(f"{server}: {result}")
        return result.requests / result.window_s, cpu_s / result.requests * 1e6
    finally:
        stop(proc)


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 3
    seconds = int(argv[1]) if len(argv) > 1 else 8
    if "BENCH_GRANIAN_SITE" not in os.environ:
        print(__doc__, file=sys.stderr)
        return 2
    servers = ["uvicorn", "granian", "httptools"]
    rates: dict[str, list[float]] = {server: [] for server in servers}
    cpu: dict[str, list[float]] = {server: [] for server in servers}
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as tmp:
        for n in range(rounds):
            for server in servers if n % 2 == 0 else reversed(servers):
                rate, us = _one(server, Path(tmp), seconds, n)
                rates[server].append(rate)
                cpu[server].append(us)
                print(f"round {n + 1} {server}: {rate:,.0f} POST/s, {us:,.0f} us CPU per request", flush=True)
    median = {server: statistics.median(values) for server, values in rates.items()}
    per = {server: statistics.median(values) for server, values in cpu.items()}
    for server in servers:
        print(
            f"{server}: median {median[server]:,.0f} POST/s ({median[server] / median['uvicorn']:.2f}x serve), "
            f"{per[server]:,.0f} us CPU per request ({per[server] / per['uvicorn']:.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
