"""One ``Load`` spread over several OS processes, for rates one Python process cannot offer by itself.

Each process runs a ``Load`` with its share of the workers and of the rate; ``set_rate`` reaches them all
through shared memory. When the block ends each sends its ``Outcome`` back, and the outcomes merge into one
(``time.monotonic`` is the same clock in every process), so ``verify`` and ``lost_on`` check every receipt.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

from punchclock_tools.load import Load, Outcome

POLL_SECONDS = 0.05  # how soon a process takes up a new rate
STARTUP_SECONDS = 60.0  # for a process to import and start sending, on a busy machine


def _child(
    url: str,
    workers: int,
    rate: Synchronized[float],
    stop: Event,
    limits: tuple[float, int, float],
    out: Connection,
) -> None:
    max_seconds, max_requests, timeout = limits
    current = rate.value
    load = Load(url, workers=workers, rate=current, max_seconds=max_seconds, max_requests=max_requests, timeout=timeout)
    with load.running():
        out.send("sending")
        while not stop.is_set():
            if rate.value != current:
                current = rate.value
                load.set_rate(current)
            time.sleep(POLL_SECONDS)
    out.send(load.outcome)
    out.close()


def merge(outcomes: list[Outcome], started: float) -> Outcome:
    """One outcome of several processes' loads, from ``started``, every answer kept (those from before it, while
    other processes were still starting, are verified like the rest); answers in the order they came."""
    merged = Outcome(started=started, ended=max((o.ended for o in outcomes), default=started))
    for outcome in outcomes:
        merged.receipts.extend(outcome.receipts)
        merged.failures.extend(outcome.failures)
        merged.latencies.extend(outcome.latencies)
    merged.receipts.sort(key=lambda receipt: receipt.acked_at)
    merged.failures.sort(key=lambda failure: failure.at)
    merged.latencies.sort()
    return merged


class ProcessLoad:
    """``with ProcessLoad(url, processes=4, workers=96, rate=300).running() as load: load.set_rate(...)``."""

    def __init__(
        self,
        url: str,
        processes: int,
        workers: int,
        rate: float,
        max_seconds: float = 240.0,
        max_requests: int = 1_000_000,
        timeout: float = 60.0,
    ) -> None:
        if workers < processes:
            raise ValueError("each process needs one worker at least")
        self.url = url
        self.processes = processes
        self.workers = workers
        self.limits = (max_seconds, max_requests // processes, timeout)
        context = multiprocessing.get_context("spawn")  # no threads or sockets of this process are inherited
        self._context = context
        self._rate = context.Value("d", rate / processes)
        self._stop = context.Event()
        self.outcome = Outcome(started=time.monotonic())

    def set_rate(self, rate: float) -> None:
        self._rate.value = rate / self.processes

    @contextlib.contextmanager
    def running(self) -> Iterator[ProcessLoad]:
        shares = [self.workers // self.processes + (n < self.workers % self.processes) for n in range(self.processes)]
        pipes = [self._context.Pipe(duplex=False) for _ in shares]
        children = [
            self._context.Process(
                target=_child,
                args=(self.url, share, self._rate, self._stop, self.limits, sender),
                name=f"load-{n}",
                daemon=True,
            )
            for n, (share, (_, sender)) in enumerate(zip(shares, pipes, strict=True))
        ]
        for child in children:
            child.start()
        try:
            for receiver, _ in pipes:  # a process takes a second or more to start: the load begins with all
                if not receiver.poll(STARTUP_SECONDS) or receiver.recv() != "sending":
                    raise RuntimeError(f"a load process did not start within {STARTUP_SECONDS} s")
            started = time.monotonic()
            self.outcome = Outcome(started=started)  # the origin of the schedule while it runs
            yield self
        finally:
            self._stop.set()
            outcomes = []
            for (receiver, _), child in zip(pipes, children, strict=True):
                if receiver.poll(self.limits[2] + 30):
                    outcomes.append(receiver.recv())
                child.join(10)
                if child.is_alive():
                    child.kill()
            self.outcome = merge(outcomes, self.outcome.started)
            if len(outcomes) < len(children):
                raise RuntimeError(f"{len(children) - len(outcomes)} load processes sent no outcome")
