"""A bounded load of POST /app that records every acknowledged receipt, and the checks run on it afterwards.

The load runs on its own thread and event loop, so a scenario can kill processes from the test's thread
while it runs. Half of the requests carry an Idempotency-Key; none is retried, so every failure counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import asyncpg
import httpx

from punchclock_tools.stats import percentile


@dataclass(frozen=True)
class Receipt:
    id: int
    key: str | None
    recorded_at: str
    acked_at: float
    sent_at: float = 0.0


@dataclass(frozen=True)
class Failure:
    at: float
    status: int | None  # None when no HTTP response came back
    detail: str
    retry_after: str | None = None


@dataclass
class Outcome:
    """Everything the load saw; ``event_at`` marks when the scenario's failure began."""

    started: float
    ended: float = 0.0
    event_at: float | None = None
    receipts: list[Receipt] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds)

    @property
    def acknowledged(self) -> int:
        return len(self.receipts)

    def longest_stall(self) -> float:
        """The longest time during the run in which no POST was acknowledged."""
        moments = sorted([self.started, *(r.acked_at for r in self.receipts), self.ended])
        return max((b - a for a, b in itertools.pairwise(moments)), default=0.0)

    def p99_during_event(self) -> float:
        since = self.event_at if self.event_at is not None else self.started
        return percentile((seconds for start, seconds in self.latencies if start >= since), 99) or 0.0

    def first_ack_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first acknowledgement after it (None if there was none)."""
        return next((r.acked_at - moment for r in self.receipts if r.acked_at > moment), None)

    def held_then_acknowledged(self, since: float, held: float = 1.0) -> int:
        """POSTs sent from ``since`` on that waited more than ``held`` seconds and were then acknowledged."""
        return sum(1 for r in self.receipts if r.sent_at >= since and r.acked_at - r.sent_at > held)

    def acknowledged_between(self, start: float, end: float) -> int:
        return sum(1 for r in self.receipts if start <= r.acked_at <= end)

    def failed_between(self, start: float, end: float) -> int:
        return sum(1 for failure in self.failures if start <= failure.at <= end)


@dataclass(frozen=True)
class Verdict:
    acknowledged: int
    lost: int
    duplicates: int
    failed: int
    longest_stall: float
    p99: float
    stored_unacknowledged: int

    def line(self) -> str:
        return (
            f"acknowledged={self.acknowledged} lost={self.lost} duplicates={self.duplicates} "
            f"failed={self.failed} longest_stall={self.longest_stall:.2f}s p99_during_event={self.p99:.3f}s "
            f"stored_but_unacknowledged={self.stored_unacknowledged}"
        )


class Load:
    """``with Load(url).running() as load: ...`` sends POSTs until the block ends or a bound is reached."""

    def __init__(
        self,
        url: str,
        workers: int = 8,
        rate: float = 100.0,
        max_seconds: float = 240.0,
        max_requests: int = 100_000,
        timeout: float = 60.0,  # above the failover budget (40 s), so a held POST gets its 503, not a timeout
        ca_file: str | None = None,  # for an https:// url: the CA its certificate must chain to
    ) -> None:
        self.url = url.rstrip("/")
        self.ca_file = ca_file
        self.workers = workers
        self.interval = workers / rate
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.timeout = timeout
        self.outcome = Outcome(started=time.monotonic())
        self._stop = threading.Event()
        self._sent = 0

    def set_rate(self, rate: float) -> None:
        """Offer ``rate`` POSTs a second from now on (each worker's pause between its requests); a schedule
        of rising and falling load calls it at each step."""
        self.interval = self.workers / rate

    def mark_event(self) -> None:
        self.outcome.event_at = time.monotonic()

    @contextlib.contextmanager
    def running(self) -> Iterator[Load]:
        thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="ha-load", daemon=True)
        self.outcome.started = time.monotonic()
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(self.timeout + 10)
            self.outcome.ended = time.monotonic()

    def wait_acknowledged(self, count: int, timeout: float = 30) -> None:
        """Block until ``count`` more receipts arrived (the load demonstrably flows)."""
        target = self.outcome.acknowledged + count
        deadline = time.monotonic() + timeout
        while self.outcome.acknowledged < target:
            if time.monotonic() > deadline:
                raise TimeoutError(f"load stalled at {self.outcome.acknowledged} acknowledged receipts")
            time.sleep(0.1)

    async def _run(self) -> None:
        deadline = self.outcome.started + self.max_seconds
        limits = httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers)
        verify = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else True
        async with httpx.AsyncClient(timeout=self.timeout, limits=limits, verify=verify) as client:
            await asyncio.gather(*(self._worker(client, n, deadline) for n in range(self.workers)))

    async def _worker(self, client: httpx.AsyncClient, n: int, deadline: float) -> None:
        await asyncio.sleep(self.interval * n / self.workers)
        while not self._stop.is_set() and time.monotonic() < deadline and self._sent < self.max_requests:
            self._sent += 1
            key = str(uuid.uuid4()) if self._sent % 2 else None
            await self._post(client, key)
            await asyncio.sleep(self.interval)

    async def _post(self, client: httpx.AsyncClient, key: str | None) -> None:
        headers = {"Idempotency-Key": key} if key else {}
        start = time.monotonic()
        try:
            response = await client.post(f"{self.url}/app", headers=headers)
        except httpx.HTTPError as error:
            self.outcome.failures.append(Failure(time.monotonic(), None, repr(error)))
            return
        finally:
            self.outcome.latencies.append((start, time.monotonic() - start))
        if response.status_code == 201:
            body = response.json()
            self.outcome.receipts.append(Receipt(body["id"], key, body["recorded_at"], time.monotonic(), start))
        else:
            self.outcome.failures.append(
                Failure(
                    time.monotonic(), response.status_code, response.text[:200], response.headers.get("retry-after")
                )
            )


async def _stored(dsn: str, receipts: list[Receipt], since: str) -> tuple[dict[int, str], int, int]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT id, key FROM stamps WHERE id = ANY($1::bigint[])", [r.id for r in receipts])
        keys = [r.key for r in receipts if r.key]
        doubled = await conn.fetchval(
            "SELECT count(*) FROM (SELECT key FROM stamps WHERE key = ANY($1::text[]) "
            "GROUP BY key HAVING count(*) > 1) AS d",
            keys,
        )
        in_window = await conn.fetchval("SELECT count(*) FROM stamps WHERE recorded_at >= $1::text::timestamptz", since)
    finally:
        await conn.close()
    return {row["id"]: row["key"] for row in rows}, int(doubled), int(in_window)


def lost_on(outcome: Outcome, dsns: dict[str, str], settle: float = 30.0) -> dict[str, int | None]:
    """Acknowledged receipts missing (or under another key) on each node; None for a node that does not answer.

    A replica has flushed what it confirmed but may not have replayed it yet: it gets ``settle`` seconds.
    """
    found: dict[str, int | None] = {}
    for name, dsn in dsns.items():
        deadline = time.monotonic() + settle
        while True:
            try:
                stored, _, _ = asyncio.run(_stored(dsn, outcome.receipts, "-infinity"))
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                found[name] = None
                break
            found[name] = sum(
                1 for r in outcome.receipts if r.id not in stored or (r.key is not None and stored[r.id] != r.key)
            )
            if found[name] == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
    return found


def verify(outcome: Outcome, dsn: str) -> Verdict:
    """Check every acknowledged receipt against the database behind ``dsn`` (the leader)."""
    receipts = outcome.receipts
    since = min((r.recorded_at for r in receipts), default="-infinity")
    stored, doubled_keys, in_window = asyncio.run(_stored(dsn, receipts, since))
    lost = sum(1 for r in receipts if r.id not in stored or (r.key is not None and stored[r.id] != r.key))
    ids = [r.id for r in receipts]
    keyed = [r.key for r in receipts if r.key]
    duplicates = (len(ids) - len(set(ids))) + (len(keyed) - len(set(keyed))) + doubled_keys
    return Verdict(
        acknowledged=len(receipts),
        lost=lost,
        duplicates=duplicates,
        failed=len(outcome.failures),
        longest_stall=outcome.longest_stall(),
        p99=outcome.p99_during_event(),
        stored_unacknowledged=max(0, in_window - len(set(ids))),
    )
