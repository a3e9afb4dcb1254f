"""Watchers that run beside a scenario: the promise behind a 201 (SyncWatch), and every instance's readiness as
a Kubernetes probe sees it (ReadyWatch)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import asyncpg

from punchclock_tools.cluster import balancer

if TYPE_CHECKING:
    from punchclock_tools.cluster.faults import Cluster

# The readiness probe's timeoutSeconds in deploy/kubernetes/base/app/deployment.yaml: an answer slower than
# this is a failed probe there, so it counts as one here.
PROBE_TIMEOUT_SECONDS = 2.0


@dataclass
class SyncWatch:
    """Every ``interval`` asks each node (own connection, 0.5 s timeout) whether it is a primary and whom it
    names in ``synchronous_standby_names``; a primary naming nobody commits without a synchronous standby.

    ``error`` is set if the watcher itself died. ``unprotected`` holds the windows (from the poll before to
    the poll after) in which some primary had it empty; ``most_primaries`` is the largest number of nodes
    that answered as primary in one poll (a resumed frozen leader counts until it is demoted); ``check_ms``
    the slowest HAProxy health check seen per server.
    """

    cluster: Cluster
    interval: float = 0.1
    unprotected: list[tuple[float, float, str]] = field(default_factory=list)
    most_primaries: int = 0
    polls: int = 0
    check_ms: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="sync-watch", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as error:  # kept for check_promise: a dead watcher must fail the scenario
            self.error = repr(error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def acked_unprotected(self, acked_at: list[float]) -> int:
        """How many acknowledgements arrived while a primary had no synchronous standby."""
        return sum(1 for at in acked_at if any(start <= at <= end for start, end, _ in self.unprotected))

    def unprotected_seconds(self) -> float:
        return sum(end - start for start, end, _ in self.unprotected)

    async def _ask(self, name: str, conns: dict[str, asyncpg.Connection]) -> tuple[bool, str] | None:
        try:
            if name not in conns:
                conns[name] = await asyncpg.connect(self.cluster.node_dsn(name, "postgres"), timeout=0.5)
            row = await conns[name].fetchrow(
                "SELECT pg_is_in_recovery() AS standby, current_setting('synchronous_standby_names') AS names",
                timeout=0.5,
            )
            return (not row["standby"], row["names"]) if row else None
        # InternalClientError: a query timed out mid-protocol and the connection is unusable; start afresh.
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError):
            conn = conns.pop(name, None)
            if conn is not None:
                conn.terminate()
            return None

    def _sample_checks(self) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError):
            for row in balancer.stats(self.cluster.layout):
                if row.get("check_duration"):
                    key = f"{row['pxname']}/{row['svname']}"
                    self.check_ms[key] = max(self.check_ms.get(key, 0), int(row["check_duration"]))

    async def _run(self) -> None:
        conns: dict[str, asyncpg.Connection] = {}
        names = [node.name for node in self.cluster.layout.nodes]
        open_since: dict[str, float] = {}
        last = time.monotonic()
        try:
            while not self._stop.is_set():
                answers = await asyncio.gather(*(self._ask(name, conns) for name in names))
                now = time.monotonic()
                primaries = [(n, a[1]) for n, a in zip(names, answers, strict=True) if a and a[0]]
                self.most_primaries = max(self.most_primaries, len(primaries))
                for name, answer in zip(names, answers, strict=True):
                    empty = bool(answer and answer[0] and not answer[1].strip())
                    if empty and name not in open_since:
                        open_since[name] = last
                    elif answer and not empty and name in open_since:
                        self.unprotected.append((open_since.pop(name), now, name))
                self.polls += 1
                if self.polls % 5 == 0:
                    await asyncio.to_thread(self._sample_checks)
                last = now
                await asyncio.sleep(self.interval)
            self.unprotected += [(start, time.monotonic(), name) for name, start in open_since.items()]
        finally:
            for conn in conns.values():
                conn.terminate()


@dataclass
class ReadyWatch:
    """Every ``interval`` asks each instance's own ``/readyz`` (one thread per instance, so a slow answer from
    one delays no probe of the other); keeps every answer that was not a 200 within the probe timeout."""

    urls: list[str]
    interval: float = 0.25
    timeout: float = PROBE_TIMEOUT_SECONDS
    probes: dict[str, int] = field(default_factory=dict)
    not_ready: list[tuple[float, str, str]] = field(default_factory=list)  # (monotonic, url, status or error)
    slowest_ms: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for url in self.urls:
            thread = threading.Thread(target=self._probe, args=(url,), name=f"ready-watch {url}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def _probe(self, url: str) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=self.timeout) as response:  # noqa: S310 - http://127.0.0.1 URLs built here
                    outcome = str(response.status)
            except urllib.error.HTTPError as error:
                outcome = str(error.code)
            except OSError as error:  # a timeout or a refused connection: a failed probe either way
                outcome = type(error).__name__
            took = time.monotonic() - started
            self.probes[url] = self.probes.get(url, 0) + 1
            self.slowest_ms[url] = max(self.slowest_ms.get(url, 0), round(took * 1000))
            if outcome != "200" or took > self.timeout:
                self.not_ready.append((started, url, outcome))
            self._stop.wait(self.interval)
