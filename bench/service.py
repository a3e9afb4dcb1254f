"""The punchclock service under test: ``punchclock serve`` as a child process with production settings."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.processes import spawn, stop, wait_until
from punchclock_tools.ports import free_port

BIN = Path(sys.executable).parent  # the harness runs from the project's .venv
CLI = str(BIN / "punchclock")

# Settings of the caller's shell that would change what is measured; the benchmark sets its own.
_OWN_PREFIXES = ("PUNCHCLOCK_", "DATABASE_URL", "DB_", "PORT")


def service_env(database_url: str, port: int, overrides: Mapping[str, str]) -> dict[str, str]:
    """The environment of the measured server: the caller's, minus punchclock settings, plus ours."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_PREFIXES)}
    env.update(
        {
            "DATABASE_URL": database_url,
            "PORT": str(port),
            "PUNCHCLOCK_HOST": "127.0.0.1",
            "PUNCHCLOCK_ENV": "production",
            **overrides,
        }
    )
    return env


def migrate(database_url: str, log: Path) -> None:
    """``punchclock migrate`` against ``database_url`` (the table pgbench and the service share)."""
    env = service_env(database_url, 0, {})
    result = subprocess.run([CLI, "migrate"], env=env, capture_output=True, text=True, timeout=120, check=False)
    with log.open("a") as handle:
        handle.write(f"$ punchclock migrate\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        raise RuntimeError(f"punchclock migrate failed:\n{result.stdout}{result.stderr}")


def http_status(url: str, timeout: float = 2.0) -> int:
    """The status of ``GET url`` (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback URL we built)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


@dataclass(frozen=True)
class RunningService:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@contextlib.contextmanager
def running_service(
    database_url: str, log: Path, overrides: Mapping[str, str] | None = None, start_timeout: float = 60.0
) -> Iterator[RunningService]:
    """Start ``punchclock serve``, wait until ``/readyz`` answers 200, stop its process group after."""
    port = free_port()
    env = service_env(database_url, port, overrides or {})
    with log.open("a") as handle:
        shown = {k: v for k, v in env.items() if k.startswith("PUNCHCLOCK_") or k == "PORT"}
        handle.write(f"$ punchclock serve  # {shown}\n")
    proc = spawn([CLI, "serve"], log, env=env)
    service = RunningService(url=f"http://127.0.0.1:{port}", proc=proc, log=log)
    try:
        ready = wait_until(
            lambda: proc.poll() is not None or http_status(service.url + "/readyz") == 200,
            timeout=start_timeout,
            interval=0.2,
        )
        if not ready or proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"punchclock serve did not become ready (exit {proc.poll()}):\n{tail}")
        yield service
    finally:
        stop(proc, grace=15)
