"""The punchclock command as operators run it: help, migrate, serve's refusals, SQLite backup while serving."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from punchclock_tools.http import wait_until_ready
from punchclock_tools.paths import REPO
from punchclock_tools.ports import free_port
from punchclock_tools.process import PUNCHCLOCK, env_for, serving_process


@pytest.mark.parametrize("args", [[], ["serve"], ["migrate"], ["backup"], ["restore"]])
def test_every_command_has_help(args: list[str]) -> None:
    """`python -m punchclock [COMMAND] --help` describes the command and exits 0."""
    result = subprocess.run([*PUNCHCLOCK, *args, "--help"], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0
    assert "usage: punchclock" in result.stdout


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        ({"PUNCHCLOCK_WORKERS": "100"}, "PUNCHCLOCK_WORKERS=100: must be at most 64"),
        ({"PORT": "eighty"}, "PORT=eighty: must be a whole number"),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_variable(variables: dict[str, str], line: str) -> None:
    """A refused setting exits 2 with one line on stderr that names the variable as set, and no traceback."""
    result = subprocess.run(
        [*PUNCHCLOCK, "serve"], env=env_for(**variables), capture_output=True, text=True, timeout=30, check=False
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"punchclock: invalid settings: {line}\n"


def test_serve_on_a_terminal_logs_readable_lines(tmp_path: Path) -> None:
    """With stdout a terminal (as under `make run`), the log is structlog's readable lines, not JSON."""
    port = free_port()
    env = env_for(DATABASE_URL=f"sqlite:///{tmp_path / 'tty.db'}", PORT=str(port), NO_COLOR="1")
    main, child = pty.openpty()
    process = subprocess.Popen([*PUNCHCLOCK, "serve"], env=env, stdout=child, stderr=child, cwd=REPO)
    os.close(child)
    output = b""
    try:
        deadline = time.monotonic() + 60
        while b"Uvicorn running" not in output and time.monotonic() < deadline:
            if select.select([main], [], [], 1)[0]:
                output += os.read(main, 65536)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        os.close(main)
    lines = output.decode().splitlines()
    serving = next(line for line in lines if "serving" in line)
    assert not serving.startswith("{")
    assert "[info     ] serving" in serving
    assert "commit_mode=group" in serving
    assert "\x1b[" not in output.decode()  # NO_COLOR


@pytest.mark.postgres
def test_serve_refuses_an_unmigrated_postgres_until_migrate_runs(postgres_url: str, tmp_path: Path) -> None:
    """Against PostgreSQL, serve exits with a clear message on an old schema; after `migrate` it serves."""
    port = free_port()
    env = env_for(DATABASE_URL=postgres_url, PORT=str(port))

    refused = subprocess.run([*PUNCHCLOCK, "serve"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0
    assert "run `punchclock migrate` first" in refused.stdout
    assert "punchclock-test" not in refused.stdout + refused.stderr  # the password never shows

    migrated = subprocess.run([*PUNCHCLOCK, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=True)
    assert '"applied":[1,2]' in migrated.stdout
    with serving_process(env, tmp_path / "serve.log") as process:
        wait_until_ready(f"http://127.0.0.1:{port}", process)
        assert httpx.post(f"http://127.0.0.1:{port}/app").status_code == 201


def test_migrate_gives_up_on_an_unreachable_database_with_one_line_per_attempt() -> None:
    """`migrate` waits a bounded time for the database, logging each attempt, then fails clearly."""
    env = env_for(
        DATABASE_URL=f"postgresql://punchclock:secret@127.0.0.1:{free_port()}/punchclock",
        PUNCHCLOCK_STARTUP_WAIT_SECONDS="2",
    )
    result = subprocess.run([*PUNCHCLOCK, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout.count("database not reachable yet; waiting") >= 2
    assert "not reachable within 2 s" in result.stdout
    assert "secret" not in result.stdout + result.stderr


def test_restore_is_refused_while_serving_and_backup_works(tmp_path: Path) -> None:
    """With the service up on SQLite, `backup` copies it and `restore` refuses to run underneath it."""
    port = free_port()
    env = env_for(DATABASE_URL=f"sqlite:///{tmp_path / 'live.db'}", PORT=str(port))
    with serving_process(env, tmp_path / "serve.log") as process:
        wait_until_ready(f"http://127.0.0.1:{port}", process)
        assert httpx.post(f"http://127.0.0.1:{port}/app").status_code == 201
        made = subprocess.run(
            [*PUNCHCLOCK, "backup", str(tmp_path / "b.db")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        refused = subprocess.run(
            [*PUNCHCLOCK, "restore", "--force", str(tmp_path / "b.db")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert made.returncode == 0, made.stdout
    assert '"stamps":1' in made.stdout
    assert refused.returncode == 1
    assert "stop the service first" in refused.stdout


def test_readme_quick_start(tmp_path: Path) -> None:
    """The README's first commands: `make run`, then `curl -X POST http://localhost:PORT/app` gives 201."""
    port = free_port()
    env = env_for(PORT=str(port), DATABASE_URL=f"sqlite:///{tmp_path / 'readme.db'}")
    with serving_process(env, tmp_path / "make-run.log", ["make", "--no-print-directory", "run"]) as process:
        wait_until_ready(f"http://localhost:{port}", process, timeout=120)
        curl = subprocess.run(
            ["curl", "-s", "-i", "-X", "POST", f"http://localhost:{port}/app"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    assert curl.stdout.startswith("HTTP/1.1 201")
    assert '"recorded_at"' in curl.stdout
    assert REPO.joinpath("README.md").read_text().count("make run") >= 1


def test_each_request_logs_one_json_line_with_its_request_id(tmp_path: Path) -> None:
    """The access log has one JSON object per request: method, path, status, duration and request id."""
    port = free_port()
    env = env_for(DATABASE_URL=f"sqlite:///{tmp_path / 'log.db'}", PORT=str(port))
    log = tmp_path / "serve.log"
    with serving_process(env, log) as process:
        wait_until_ready(f"http://127.0.0.1:{port}", process)
        httpx.post(f"http://127.0.0.1:{port}/app", headers={"X-Request-ID": "trace-me-1"})
        httpx.get(f"http://127.0.0.1:{port}/app/424242")
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    requests = [line for line in lines if line.get("event") == "request" and line["path"] != "/readyz"]
    assert [(r["method"], r["path"], r["status"]) for r in requests] == [
        ("POST", "/app", 201),
        ("GET", "/app/424242", 404),
    ]
    assert requests[0]["request_id"] == "trace-me-1"
    assert all(isinstance(r["duration_ms"], float) and r["timestamp"].endswith("Z") for r in requests)
