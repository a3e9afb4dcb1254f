"""The write path's decisions: group commit, retries with the same keys, budgets and backpressure.

These drive the writer against a real SQLite store wrapped to inject failures; the HA suite proves the
same behaviour against a real PostgreSQL failover.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from punchclock.errors import DatabaseUnavailable, Overloaded, TransientStorageError, Unavailable
from punchclock.metrics import Metrics
from punchclock.settings import Settings
from punchclock.store import NewStamp, Stored
from punchclock.store.sqlite import SQLiteStore
from punchclock.writer import Writer


class CommitsThenLosesTheAnswer(SQLiteStore):
    """Commits for real, then reports a lost connection: the 'commit outcome unknown' case."""

    def __init__(self, path: Path, failures: int) -> None:
        super().__init__(path)
        self.failures = failures
        self.calls: list[int] = []

    async def insert(self, stamps: Sequence[NewStamp]) -> dict[str, Stored]:
        self.calls.append(len(stamps))
        result = await super().insert(stamps)
        if self.failures:
            self.failures -= 1
            raise TransientStorageError("connection lost during COMMIT")
        return result


class Unreachable(SQLiteStore):
    async def insert(self, stamps: Sequence[NewStamp]) -> dict[str, Stored]:
        raise TransientStorageError("connection refused")


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


async def started(store: SQLiteStore, metrics: Metrics, **settings: object) -> Writer:
    await store.open()
    await store.migrate()
    writer = Writer(store, Settings(database_url="sqlite:///unused.db", **settings), metrics)  # type: ignore[arg-type]
    await writer.start()
    return writer


@pytest.fixture
async def flaky(tmp_path: Path) -> AsyncIterator[CommitsThenLosesTheAnswer]:
    store = CommitsThenLosesTheAnswer(tmp_path / "db.sqlite", failures=2)
    yield store
    await store.close()


async def test_concurrent_stamps_share_one_commit(tmp_path: Path, metrics: Metrics) -> None:
    """Stamps queued while a commit runs go out together in the next one, each getting its own row."""
    store = CommitsThenLosesTheAnswer(tmp_path / "db.sqlite", failures=0)
    writer = await started(store, metrics, writers=1)
    results = await asyncio.gather(*(writer.record(NewStamp(f"k{n}", now())) for n in range(200)))
    await writer.stop(1)
    await store.close()

    assert len({r.stamp.id for r in results}) == 200
    assert len(store.calls) < 200
    assert sum(store.calls) == 200


async def test_unknown_outcome_is_retried_without_duplicates(
    flaky: CommitsThenLosesTheAnswer, metrics: Metrics
) -> None:
    """Given commits whose answers are lost twice, when retried, then each stamp is stored once."""
    writer = await started(flaky, metrics)
    results = await asyncio.gather(*(writer.record(NewStamp(f"k{n}", now())) for n in range(20)))
    await writer.stop(1)

    assert {r.stamp.id for r in results} == {s.id for s in await flaky.page(100, None)}
    assert len(await flaky.page(100, None)) == 20
    assert metrics.write_retries._value.get() == 2


async def test_spent_budget_answers_503_promptly(tmp_path: Path, metrics: Metrics) -> None:
    """With the database unreachable, a write gives up at its failover budget with a retryable 503."""
    store = Unreachable(tmp_path / "db.sqlite")
    writer = await started(store, metrics, failover_budget_seconds=0.3)
    with pytest.raises(DatabaseUnavailable) as caught:
        await asyncio.wait_for(writer.record(NewStamp("k", now())), timeout=5)
    assert caught.value.retry_after >= 1
    await writer.stop(1)
    await store.close()


async def test_full_queue_pushes_back_instead_of_growing(tmp_path: Path, metrics: Metrics) -> None:
    """When the bounded queue is full, new stamps are refused at once with Overloaded (503)."""
    store = Unreachable(tmp_path / "db.sqlite")
    writer = await started(store, metrics, queue_max=5, writers=1, batch_max=1, failover_budget_seconds=2)
    waiting = []
    for n in range(6):  # one taken by the writer, five fill the queue
        waiting.append(asyncio.create_task(writer.record(NewStamp(f"k{n}", now()))))
        await asyncio.sleep(0.01)
    with pytest.raises(Overloaded):
        await writer.record(NewStamp("one-too-many", now()))
    await writer.stop(0.1)
    await asyncio.gather(*waiting, return_exceptions=True)
    await store.close()


class Switchable(SQLiteStore):
    """A real SQLite store that can be made unreachable and brought back."""

    down = False

    async def insert(self, stamps: Sequence[NewStamp]) -> dict[str, Stored]:
        if self.down:
            raise TransientStorageError("connection refused")
        return await super().insert(stamps)

    async def check_writable(self) -> None:
        if self.down:
            raise TransientStorageError("connection refused")
        await super().check_writable()


async def test_long_outage_fails_fast_then_recovers(tmp_path: Path, metrics: Metrics) -> None:
    """Given an outage longer than the budget, new stamps are refused at once; when the database returns,
    a probe notices and stamps are accepted again without a restart."""
    store = Switchable(tmp_path / "db.sqlite")
    writer = await started(store, metrics, failover_budget_seconds=0.3)
    store.down = True
    with pytest.raises(DatabaseUnavailable):
        await writer.record(NewStamp("during-outage", now()))
    await asyncio.sleep(0.4)  # the outage has now outlasted the budget

    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(DatabaseUnavailable, match="failing fast"):
        await writer.record(NewStamp("fast", now()))
    assert loop.time() - began < 0.2

    store.down = False
    for _ in range(50):
        try:
            stored = await writer.record(NewStamp("after", now()))
            break
        except DatabaseUnavailable:
            await asyncio.sleep(0.1)
    assert stored.created
    await writer.stop(1)
    await store.close()


class Buggy(SQLiteStore):
    """Fails once with an error nobody foresaw, after committing."""

    failed = False

    async def insert(self, stamps: Sequence[NewStamp]) -> dict[str, Stored]:
        result = await super().insert(stamps)
        if not self.failed:
            self.failed = True
            raise RuntimeError("driver bug")
        return result


async def test_unforeseen_store_error_is_retried_not_a_500(tmp_path: Path, metrics: Metrics) -> None:
    """An unexpected exception from the store is treated as an unknown outcome: retried, stored once."""
    store = Buggy(tmp_path / "db.sqlite")
    writer = await started(store, metrics)
    stored = await writer.record(NewStamp("k", now()))
    await writer.stop(1)
    assert [s.id for s in await store.page(10, None)] == [stored.stamp.id]
    await store.close()


async def test_drain_cut_off_answers_every_waiter_then_refuses_new_ones(tmp_path: Path, metrics: Metrics) -> None:
    """Given stamps waiting on an unreachable database, when the drain bound comes near, then every waiter is
    answered 503 (retry with the same key) before its failover budget, and a stamp sent after that at once."""
    store = Unreachable(tmp_path / "db.sqlite")
    writer = await started(store, metrics, failover_budget_seconds=30)
    waiting = [asyncio.create_task(writer.record(NewStamp(f"k{n}", now()))) for n in range(5)]
    await asyncio.sleep(0.05)
    writer.answer_within(0.5)  # cut off at 0.4 s, long before the 30 s budget
    answers = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), timeout=5)
    with pytest.raises(Unavailable) as late:
        await asyncio.wait_for(writer.record(NewStamp("late", now())), timeout=1)
    await writer.stop(0.1)
    await store.close()

    assert [type(answer) for answer in answers] == [Unavailable] * 5
    assert "shutting down" in str(late.value)
