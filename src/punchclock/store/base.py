"""The storage interface: the rest of punchclock sees only this, never which database is behind it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

MAX_ID = 2**63 - 1  # ids are 64-bit signed integers in both backends


@dataclass(frozen=True, slots=True)
class NewStamp:
    """A stamp to record. ``key`` is unique per stamp: the client's Idempotency-Key or a generated one."""

    key: str
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Stamp:
    """A stored stamp."""

    id: int
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class Stored:
    """What an insert found for one key: the stamp, and whether this insert created it."""

    stamp: Stamp
    created: bool


class Store(Protocol):
    """A durable home for stamps. Every method raises ``TransientStorageError`` when the database cannot
    be reached or cannot write right now, and ``StorageError`` for anything else."""

    async def open(self) -> None:
        """Connect. Raises ``TransientStorageError`` when the database is not reachable yet."""

    async def close(self) -> None: ...

    async def migrate(self) -> list[int]:
        """Apply missing migrations; return the versions applied."""

    async def schema_version(self) -> int:
        """The newest migration applied, 0 for an empty database."""

    async def insert(self, stamps: Sequence[NewStamp]) -> dict[str, Stored]:
        """Record ``stamps`` in one transaction, durably, before returning. A key already stored is not
        recorded again; its original stamp is returned instead. Safe to repeat after an unknown outcome."""

    async def get(self, stamp_id: int) -> Stamp | None: ...

    async def page(self, limit: int, before: int | None) -> list[Stamp]:
        """Up to ``limit`` stamps with ids below ``before`` (all when None), newest first."""

    async def check_writable(self) -> None:
        """Return when the database would accept a write now; raise otherwise."""

    def pool_max(self) -> int:
        """Connections the store may open at most."""
        ...

    def pool_stats(self) -> tuple[int, int]:
        """(connections open, connections in use)."""
