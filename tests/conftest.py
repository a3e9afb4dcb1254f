"""Fixtures shared by every suite: a PostgreSQL 15 server for the session, a fresh database per test."""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from punchclock_tools import postgres

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.Server]:
    """One real PostgreSQL 15 for the whole session (make test installs it when missing), reached over TLS
    verified against its own CA, as production requires."""
    if not (postgres.PG_BIN / "postgres").exists() or not shutil.which("setpriv"):
        pytest.fail(f"PostgreSQL 15 is not installed in {postgres.PG_BIN}; run `make test`, which installs it")
    with postgres.throwaway(tls=True) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: postgres.Server) -> str:
    """A new, empty database on the session's server, owned by the punchclock role."""
    name = f"test_{next(_databases)}"
    postgres_server.psql(f"CREATE DATABASE {name} OWNER punchclock", database="postgres")
    return postgres_server.dsn(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'punchclock.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """The contract suite runs once per backend."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))
