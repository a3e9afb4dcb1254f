"""Run ``punchclock`` as a real process, the way operators do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg

from punchclock_tools.paths import REPO
from punchclock_tools.ports import free_port

PUNCHCLOCK = [sys.executable, "-m", "punchclock"]


def env_for(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUNCHCLOCK_", "DB_", "DATABASE_URL"))}
    env.update(values)
    return env


def migrate(env: dict[str, str]) -> None:
    """``punchclock migrate`` with ``env``, as the deployment's migration step runs it."""
    subprocess.run([*PUNCHCLOCK, "migrate"], env=env, capture_output=True, timeout=60, check=True)


@contextmanager
def serving_process(
    env: dict[str, str], log: Path, command: list[str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``punchclock serve`` in its own process group; SIGKILL the group if the test leaves it running."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            command or [*PUNCHCLOCK, "serve"],
            env=env,
            cwd=REPO,
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


@contextmanager
def serving_on(dsn: str, log: Path, **settings: str) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``punchclock serve`` on a free loopback port against ``dsn``, migrated first, with ``settings`` as its
    environment: yields the service's URL and its process (see ``serving_process``)."""
    port = free_port()
    env = env_for(DATABASE_URL=dsn, PORT=str(port), **settings)
    migrate(env)
    with serving_process(env, log) as process:
        yield f"http://127.0.0.1:{port}", process


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
