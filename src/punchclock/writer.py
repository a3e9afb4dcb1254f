"""The write path: group commit with bounded batches, retried across failovers.

Requests put their stamp on a bounded queue and wait. Each of ``writers`` loops takes whatever is queued
(at most ``batch_max``) and commits it as one transaction, then wakes every waiter in it. Nothing waits on a
timer: an idle service commits a lone stamp at once, a busy one gathers the stamps that arrived during the
previous commit. When a commit fails because the database is unreachable or failing over, the outcome is
unknown, so the same batch (same keys) is retried until it succeeds or every waiter's failover budget is
spent. Keys make the retry idempotent.

Once the database has failed continuously for longer than the budget, new stamps are refused at once (503
with Retry-After) instead of each waiting out the budget, and a probe checks every half second for the
database to take writes again. When the server stops accepting connections, waiters are answered 503 just
before the drain bound, so no request is cut off without a proper answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from punchclock.errors import DatabaseUnavailable, Overloaded, StorageError, TransientStorageError, Unavailable
from punchclock.metrics import Metrics
from punchclock.settings import CommitMode, Settings
from punchclock.store import NewStamp, Store, Stored

log = structlog.get_logger("punchclock.writer")

_BACKOFF_FIRST = 0.05
_BACKOFF_MAX = 1.0
_PROBE_INTERVAL = 0.5
# How long one write check's result answers every caller (readiness probes, the outage probe), whatever the
# probe rate: the heartbeat is a replicated commit, and probes must not multiply writes.
_CHECK_REUSE = 1.0
_ANSWER_MARGIN = 0.2  # share of the drain bound (at most 1 s) kept for answering waiters before it ends


@dataclass(slots=True, eq=False)  # compared and hashed by identity: a set holds the waiting ones
class _Pending:
    stamp: NewStamp
    deadline: float
    future: asyncio.Future[Stored] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Writer:
    """Records stamps durably; ``record`` returns only after the commit holding the stamp returned."""

    def __init__(self, store: Store, settings: Settings, metrics: Metrics) -> None:
        self._store = store
        self._metrics = metrics
        self._budget = settings.failover_budget_seconds
        self._batch_max = settings.batch_max if settings.commit_mode is CommitMode.GROUP else 1
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=settings.queue_max)
        # Per-request mode is group commit with batches of one and as many writers as pool connections.
        self._loops = settings.writers if settings.commit_mode is CommitMode.GROUP else settings.pool_size
        self._tasks: list[asyncio.Task[None]] = []
        self._inflight = 0  # batches taken off the queue and not yet answered
        self._failing_since: float | None = None  # start of the current run of failed commits
        self._probe: asyncio.Task[None] | None = None
        self._check: asyncio.Task[None] | None = None
        self._checked_at = 0.0
        self._wrote_at: float | None = None  # the last commit or write check that succeeded
        self._cutoff: asyncio.Future[None] | None = None  # resolved when waiters must be answered now
        self._waiting: set[_Pending] = set()  # stamps whose request still waits for its answer
        self._retry_after = max(1, round(self._budget / 2))
        metrics.queue_max.set(settings.queue_max)
        metrics.sample(metrics.queue_depth, self._queue.qsize)

    async def start(self) -> None:
        self._cutoff = asyncio.get_running_loop().create_future()
        self._tasks = [asyncio.create_task(self._run(), name=f"writer-{n}") for n in range(self._loops)]

    def answer_within(self, seconds: float) -> None:
        """The server stops accepting connections and will cut requests off in ``seconds``: answer every
        waiter still waiting shortly before that (503, retry with the same key)."""
        cutoff = self._cutoff
        if cutoff is None or cutoff.done():
            return

        asyncio.get_running_loop().call_later(seconds - min(1.0, seconds * _ANSWER_MARGIN), self._cut_off, cutoff)

    async def stop(self, bound: float) -> None:
        """Commit what is queued (for at most ``bound`` seconds), then stop the loops."""
        deadline = time.monotonic() + bound
        while (self._queue.qsize() or self._inflight) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        tasks = [*self._tasks, *(task for task in (self._probe, self._check) if task)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks, self._probe, self._check = [], None, None
        left = 0
        while not self._queue.empty():
            left += 1
            _reject(self._queue.get_nowait(), self._shutting_down())
        if left:
            log.warning("drain bound reached with stamps still queued; they were answered 503", stamps=left)

    async def record(self, stamp: NewStamp) -> Stored:
        """Queue ``stamp`` and wait for its commit, at most the failover budget."""
        if self._outage_outlasted_budget():
            if self._probe is None or self._probe.done():
                self._probe = asyncio.create_task(self._probe_until_writable(), name="writer-probe")
            raise DatabaseUnavailable(
                f"the database has not taken writes for over {self._budget:g} s; failing fast until it does",
                self._retry_after,
            )
        pending = _Pending(stamp, time.monotonic() + self._budget)
        try:
            self._queue.put_nowait(pending)
        except asyncio.QueueFull:
            self._metrics.db_errors.labels(kind="queue_full").inc()
            raise Overloaded("the write queue is full; retry shortly", retry_after=1) from None
        cutoff = self._cutoff
        if cutoff is not None and cutoff.done():
            raise self._shutting_down()
        # One timer and one future per request; the budget's expiry and the drain's cut-off answer the future
        # (asyncio.wait's per-call set, callbacks and extra waiter future cost more than the commit's share).
        timer = asyncio.get_running_loop().call_later(self._budget, self._time_out, pending)
        self._waiting.add(pending)
        try:
            return await pending.future
        finally:
            timer.cancel()
            self._waiting.discard(pending)

    def _time_out(self, pending: _Pending) -> None:
        _reject(
            pending,
            DatabaseUnavailable(f"the database did not accept the write within {self._budget:g} s", self._retry_after),
        )

    def _cut_off(self, cutoff: asyncio.Future[None]) -> None:
        """Answer every waiter now (503, retry with the same key): the drain bound is about to end."""
        if not cutoff.done():
            cutoff.set_result(None)
        for pending in list(self._waiting):
            _reject(pending, self._shutting_down())

    async def check_writable(self) -> None:
        """The store's write check, shared by every caller: callers join the check in flight, and a finished
        check's result (pass or failure) answers them for ``_CHECK_REUSE`` s. A caller that stops waiting (a
        readiness timeout) leaves the check running, so a stalled database holds one session of this instance
        for it, never one more per probe. A pass also ends an outage, so writes resume without the probe."""
        check = self._check
        if check is None or (check.done() and time.monotonic() - self._checked_at > _CHECK_REUSE):
            check = self._check = asyncio.create_task(self._check_once(), name="writer-check")
            check.add_done_callback(lambda done: done.cancelled() or done.exception())  # retrieved by callers
        await asyncio.shield(check)

    async def _check_once(self) -> None:
        try:
            await self._store.check_writable()
        finally:
            self._checked_at = time.monotonic()
        self._wrote_at = self._checked_at
        if self._failing_since is not None:
            self._failing_since = None
            log.info("database takes writes again; accepting stamps")

    def wrote_within_budget(self) -> bool:
        """The database took a write less than a failover budget ago: an outage this short may be a failover,
        and a stamp sent now is held until it ends (or answered 503 when the budget runs out)."""
        return self._wrote_at is not None and time.monotonic() - self._wrote_at <= self._budget

    @property
    def budget(self) -> float:
        return self._budget

    def _shutting_down(self) -> Unavailable:
        return Unavailable(
            "punchclock is shutting down before this stamp was confirmed; retry with the same Idempotency-Key",
            self._retry_after,
        )

    def _outage_outlasted_budget(self) -> bool:
        return self._failing_since is not None and time.monotonic() - self._failing_since > self._budget

    async def _probe_until_writable(self) -> None:
        log.warning("database unavailable for longer than the failover budget; failing writes fast and probing")
        while self._outage_outlasted_budget():
            try:
                await self.check_writable()
            except Exception as exc:
                log.debug("probe: database still unavailable", reason=str(exc))
                await asyncio.sleep(_PROBE_INTERVAL)

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_max and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            self._inflight += 1
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for pending in batch:
                    _reject(pending, self._shutting_down())
                raise
            except Exception as exc:  # a bug must not kill the loop and leave every later stamp waiting
                log.exception("writer loop failed on a batch; its waiters get the error", stamps=len(batch))
                for pending in batch:
                    _reject(pending, exc)
            finally:
                self._inflight -= 1

    async def _commit(self, batch: list[_Pending]) -> None:
        attempt = 0
        while batch:
            attempt += 1
            started = time.perf_counter()
            try:
                stored = await self._store.insert([pending.stamp for pending in batch])
            except Exception as exc:
                # A StorageError that is not transient is final. Anything else (a lost connection, or an
                # error nobody foresaw) leaves the outcome unknown: retry with the same keys.
                if isinstance(exc, StorageError) and not isinstance(exc, TransientStorageError):
                    self._metrics.db_errors.labels(kind="error").inc()
                    log.exception("commit failed and will not be retried", stamps=len(batch))
                    for pending in batch:
                        _reject(pending, exc)
                    return
                self._failing_since = self._failing_since or time.monotonic()
                self._metrics.db_errors.labels(kind="transient").inc()
                if not isinstance(exc, TransientStorageError):
                    log.error("unexpected error from the store; treating the outcome as unknown", exc_info=exc)
                batch = self._expire(batch)
                if not batch:
                    log.warning("giving up on a batch: every waiter's failover budget is spent", reason=str(exc))
                    return
                delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (attempt - 1))
                log.warning(
                    "commit failed with an unknown outcome; retrying the same keys after a pause",
                    reason=str(exc),
                    stamps=len(batch),
                    attempt=attempt,
                    retry_in_s=delay,
                )
                self._metrics.write_retries.inc()
                await asyncio.sleep(delay)
                continue
            self._failing_since = None
            self._wrote_at = time.monotonic()
            self._metrics.observe_commit(
                len(batch), time.perf_counter() - started, sum(1 for s in stored.values() if s.created)
            )
            if attempt > 1:
                log.info("commit succeeded after retrying", attempts=attempt, stamps=len(batch))
            answered: set[str] = set()
            for pending in batch:
                key = pending.stamp.key
                result = stored[key]
                if key in answered:  # the same key twice in one batch: only the first created the row
                    result = Stored(result.stamp, created=False)
                answered.add(key)
                if not pending.future.done():
                    pending.future.set_result(result)
            return

    def _expire(self, batch: list[_Pending]) -> list[_Pending]:
        """Drop waiters whose budget is spent (they were already answered 503) and return the rest."""
        now = time.monotonic()
        alive = []
        for pending in batch:
            if pending.deadline > now and not pending.future.done():
                alive.append(pending)
            else:
                _reject(pending, DatabaseUnavailable("the failover budget is spent", self._retry_after))
        return alive


def _reject(pending: _Pending, exc: BaseException) -> None:
    if not pending.future.done():
        pending.future.set_exception(exc)
        pending.future.exception()  # mark it retrieved: its waiter may have given up already
