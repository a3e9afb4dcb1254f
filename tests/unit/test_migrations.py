"""Migrations: both backends move in step, versions only grow."""

from __future__ import annotations

from punchclock.store.migrations import POSTGRES, REQUIRED_VERSION, SQLITE


def test_backends_have_the_same_versions_in_order() -> None:
    """SQLite and PostgreSQL migrations carry the same version numbers, 1..N, and N is what serve needs."""
    assert [m.version for m in POSTGRES] == [m.version for m in SQLITE] == list(range(1, REQUIRED_VERSION + 1))
