"""The throwaway PostgreSQL server of the tooling, plain and with TLS."""

from __future__ import annotations

import ssl

import asyncpg
import pytest

from punchclock_tools import postgres

pytestmark = pytest.mark.postgres


def test_throwaway_server_takes_the_application_role_and_is_removed_after() -> None:
    """Given a throwaway server, the punchclock role reaches its database over TCP, and its files go with it."""
    with postgres.throwaway() as server:
        assert server.psql("SELECT current_database()") == "punchclock"
        base = server.base_dir
    assert not base.exists()


async def test_tls_server_verifies_against_its_own_ca_and_refuses_plain_tcp() -> None:
    """Given a TLS throwaway server, a verify-full connection with its CA succeeds; one without TLS is refused."""
    with postgres.throwaway(tls=True) as server:
        assert server.tls is not None
        conn = await asyncpg.connect(server.dsn())
        try:
            assert await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
        finally:
            await conn.close()
        plain = server.dsn().split("?")[0] + "?sslmode=disable"
        with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="no encryption"):
            await asyncpg.connect(plain)
        untrusted = ssl.create_default_context()  # the system's CAs do not include the server's own
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncpg.connect(server.dsn().split("?")[0], ssl=untrusted)
