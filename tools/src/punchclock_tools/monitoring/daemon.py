"""A monitoring server (Prometheus, Alertmanager, an exporter) as a process of its own session: started, waited for
on its ``/-/ready`` endpoint (or another page), and stopped by process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group), output appended to ``log``; ``env`` replaces the
    environment when given."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float, path: str = "/-/ready") -> None:
    """Until ``url`` + ``path`` answers 200; fail at once if the process exits, with the end of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + path, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s: {log.read_text()[-2000:]}")


def stop_group(pid: int, wait: float = 15) -> None:
    """SIGTERM process group ``pid``; SIGKILL it if anything of it is left after ``wait`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our child, so it does not linger as a zombie
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def detach(process: subprocess.Popen[bytes]) -> int:
    """Leave ``process`` running past this Python process (``make monitoring-up``); returns its pid for
    ``stop_group``. Popen would otherwise warn, when collected, that its child still runs."""
    process.returncode = 0
    return process.pid


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        stop_group(process.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(10)
