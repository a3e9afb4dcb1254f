"""Run ``punchclock`` as a real process, the way operators do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parents[2]
PUNCHCLOCK = [sys.executable, "-m", "punchclock"]


def env_for(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUNCHCLOCK_", "DB_", "DATABASE_URL"))}
    env.update(values)
    return env


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"punchclock exited with {process.returncode} before it was ready")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} was not ready within {timeout} s")


@contextmanager
def serving_process(
    env: dict[str, str], log: Path, command: list[str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``punchclock serve`` in its own process group; SIGKILL the group if the test leaves it running."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command or [*PUNCHCLOCK, "serve"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@asynccontextmanager
async def stamps_locked(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """Hold an exclusive lock on ``stamps`` so every insert waits, until ``ROLLBACK`` on the yielded
    connection or the end of the block."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("BEGIN")
        await conn.execute("LOCK TABLE stamps IN EXCLUSIVE MODE")
        yield conn
    finally:
        await conn.close()
