"""TLS to PostgreSQL, verified: what production accepts, and what a wrong CA or host name meets."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from punchclock_tools import postgres
from punchclock_tools.http import wait_until_ready
from punchclock_tools.ports import free_port
from punchclock_tools.process import PUNCHCLOCK, env_for, serving_process

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def tls_server() -> Iterator[postgres.Server]:
    """A TLS-only server whose certificate names localhost alone, from a CA of its own."""
    with postgres.throwaway(tls=True, tls_names=("localhost",)) as server:
        yield server


def production_env(server: postgres.Server, host: str, ca: Path, **extra: str) -> dict[str, str]:
    url = f"postgresql://punchclock:{postgres.PASSWORD}@{host}:{server.port}/punchclock"
    return env_for(
        DATABASE_URL=url,
        DB_SSLMODE="verify-full",
        DB_SSLROOTCERT=str(ca),
        PUNCHCLOCK_ENV="production",
        PUNCHCLOCK_STARTUP_WAIT_SECONDS="1",
        **extra,
    )


def migrate(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PUNCHCLOCK, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_verify_full_with_the_servers_ca_migrates_and_serves(tls_server: postgres.Server, tmp_path: Path) -> None:
    """Given verify-full with the server's CA and its certificate's name, production migrates and records a
    stamp over TLS."""
    assert tls_server.tls is not None
    port = free_port()
    env = production_env(tls_server, "localhost", tls_server.tls.ca_cert, PORT=str(port))
    assert migrate(env).returncode == 0
    with serving_process(env, tmp_path / "serve.log") as process:
        wait_until_ready(f"http://127.0.0.1:{port}", process, 30)
        created = httpx.post(f"http://127.0.0.1:{port}/app", timeout=10)
        sessions = tls_server.psql(
            "SELECT count(*), bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)"
            " WHERE application_name = 'punchclock'",
            database="postgres",
        )
    assert created.status_code == 201
    count, all_tls = sessions.split("\t")
    assert (int(count) > 0, all_tls) == (True, "t")


def test_a_certificate_from_another_ca_is_refused(tls_server: postgres.Server, tmp_path: Path) -> None:
    """Given a CA that did not sign the server's certificate, start-up fails, saying the certificate was refused."""
    other = postgres.Tls.make(tmp_path / "other-ca")
    result = migrate(production_env(tls_server, "localhost", other.ca_cert))
    assert result.returncode != 0
    assert "certificate verify failed" in result.stdout + result.stderr


def test_a_host_name_the_certificate_does_not_carry_is_refused(tls_server: postgres.Server) -> None:
    """Given the right CA but an address the certificate does not name, start-up fails on the host name."""
    assert tls_server.tls is not None
    result = migrate(production_env(tls_server, "127.0.0.1", tls_server.tls.ca_cert))
    assert result.returncode != 0
    assert "IP address mismatch" in result.stdout + result.stderr
